//! A wake-up for connection threads: rung by the inference worker that delivers a client's result, by
//! the Socket.IO timer, or by another request of the same session. A thread waits either in `poll(2)` on
//! [`Signal::fd`] (the WebSocket threads, which watch their socket too) or on the condition variable
//! ([`Signal::wait_past`]; a long-polling `GET`, which has nothing else to watch).
//!
//! [`Signal::notify`] never blocks and takes no lock but its own, so it may be called while the caller
//! holds any other lock (workers ring it under their stream's lock).

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::sync::lock;

pub(crate) struct Signal {
    generation: Mutex<u64>,
    changed: Condvar,
    pipe_rx: UnixStream,
    pipe_tx: UnixStream,
}

impl Signal {
    pub(crate) fn new() -> std::io::Result<Signal> {
        let (pipe_rx, pipe_tx) = UnixStream::pair()?;
        pipe_rx.set_nonblocking(true)?;
        pipe_tx.set_nonblocking(true)?;
        Ok(Signal {
            generation: Mutex::new(0),
            changed: Condvar::new(),
            pipe_rx,
            pipe_tx,
        })
    }

    /// Wakes every waiter. A full pipe means a wake-up is pending already.
    pub(crate) fn notify(&self) {
        *lock(&self.generation) += 1;
        self.changed.notify_all();
        // A failed write is a full pipe (non-blocking): a wake-up is pending already, which is all
        // this write is for.
        let _ = (&self.pipe_tx).write(&[1]);
    }

    /// How many times [`Self::notify`] has been called.
    pub(crate) fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Waits until the generation passes `seen` or `timeout` ends; returns the generation then.
    pub(crate) fn wait_past(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut generation = lock(&self.generation);
        while *generation <= seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            generation = match self.changed.wait_timeout(generation, left) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *generation
    }

    /// Readable while a wake-up is pending, for `poll(2)`.
    pub(crate) fn fd(&self) -> &UnixStream {
        &self.pipe_rx
    }

    /// Empties the pipe (call before looking at what changed).
    pub(crate) fn drain(&self) {
        let mut sink = [0_u8; 64];
        while matches!((&self.pipe_rx).read(&mut sink), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_wakes_on_notify_and_times_out_without_one() {
        let signal = Arc::new(Signal::new().unwrap());
        let seen = signal.generation();
        let start = Instant::now();
        assert_eq!(signal.wait_past(seen, Duration::from_millis(30)), seen);
        assert!(start.elapsed() >= Duration::from_millis(30));
        let ringer = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("ringer".into())
            .spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                ringer.notify();
            })
            .unwrap();
        assert_eq!(signal.wait_past(seen, Duration::from_secs(20)), seen + 1);
        thread.join().unwrap();
        // The pipe holds the wake-up for poll(2) until drained.
        let mut fds = [rustix::event::PollFd::new(
            signal.fd(),
            rustix::event::PollFlags::IN,
        )];
        assert_eq!(rustix::event::poll(&mut fds, None).unwrap(), 1);
        signal.drain();
        let mut fds = [rustix::event::PollFd::new(
            signal.fd(),
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        assert_eq!(rustix::event::poll(&mut fds, Some(&zero)).unwrap(), 0);
    }
}
