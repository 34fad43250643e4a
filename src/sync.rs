//! Locking shared by every thread of the process.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking the data even if a thread panicked while holding it: every structure behind
/// the process's mutexes stays consistent between statements (counters, queues, slots), so a panic in
/// one thread (already logged) must not take every other thread down with it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Joins one of the process's threads when its owner stops it. A thread that panicked is reported here
/// (the panic itself was logged by the panic hook) rather than forgotten; the owner goes on stopping.
pub fn join(thread: std::thread::JoinHandle<()>) {
    let name = thread.thread().name().unwrap_or("unnamed").to_owned();
    if thread.join().is_err() {
        tracing::error!("thread {name} had panicked");
    }
}
