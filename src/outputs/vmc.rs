//! The live VMC output: a subscriber that follows one stream of the inference service, solves each
//! result's humanoid skeleton and sends it as one OSC bundle ([`crate::motion::vmc`] makes the bundle).
//!
//! Whom it sends ([`Whom`]): the followed person (the one set by [`VmcSender::follow_person`], else the
//! lowest id in view) to the target; or every person, each to a port of their own: the first person
//! seen to the target's port, the next to the port after it, and so on (a person keeps their port
//! while in view, and for [`SLOT_GRACE`] after, so a moment behind someone does not move them to
//! another avatar; a port freed is given to the next new person). A person out of view on their port
//! gets bundles with tracking off, so the receiver eases that avatar to rest.
//!
//! A named thread (`livepose-vmc`) with a one-result subscription (a slow sender skips results, never
//! slows inference), a non-blocking UDP socket (a receiver that is absent or slow costs one failed
//! `send_to`), and a solver per person sent (each measures their own body).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::motion::solver::Solver;
use crate::motion::vmc::{bundle, encode};
use crate::service::{Service, StreamId, StreamKind, Subscription};
use crate::vision::{FrameResult, PersonId};

/// A person out of view keeps their port for this long.
pub const SLOT_GRACE: Duration = Duration::from_secs(2);

/// Why the sender could not start.
#[derive(Debug, thiserror::Error)]
pub enum VmcSendError {
    #[error("VMC socket: {0}")]
    Socket(std::io::Error),
    #[error("cannot start the VMC thread: {0}")]
    Thread(std::io::Error),
}

/// How long the sender waits for a result before it looks at the streams again.
const POLL: Duration = Duration::from_millis(100);

/// Which stream's results are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// The stream set by [`VmcSender::follow`] (the app: its selected source).
    Chosen,
    /// The oldest open remote stream: the first browser client still connected (`serve`).
    OldestClient,
}

/// Whom a sender sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whom {
    /// The followed person (the lowest id in view unless [`VmcSender::follow_person`] chose one).
    Followed,
    /// Every person (at most this many), each to a port of their own from the target's up.
    Everyone { max: usize },
}

/// Counters of a sender.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VmcStats {
    /// Results taken from the subscription.
    pub results: u64,
    /// Bundles handed to the socket.
    pub sent: u64,
    /// Bundles the socket refused (no receiver, buffer full, network down).
    pub send_failures: u64,
    /// Results the sender had no time for (superseded in its one-result mailbox).
    pub skipped: u64,
    /// Mean and largest time to solve, encode and send one result, µs.
    pub mean_cost_us: f64,
    pub max_cost_us: f64,
    /// Size of the last bundle, bytes.
    pub bundle_bytes: usize,
}

#[derive(Default)]
struct Counters {
    results: AtomicU64,
    sent: AtomicU64,
    send_failures: AtomicU64,
    cost_ns: AtomicU64,
    max_cost_ns: AtomicU64,
    bundle_bytes: AtomicU64,
}

struct Shared {
    stop: AtomicBool,
    chosen: Mutex<Option<StreamId>>,
    /// The person followed (`None`: the lowest id in view).
    person: Mutex<Option<PersonId>>,
    counters: Counters,
    skipped: AtomicU64,
}

/// A running VMC output. Dropping it stops its thread.
pub struct VmcSender {
    shared: Arc<Shared>,
    target: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl VmcSender {
    /// Starts sending the followed person of the stream chosen by `follow` to `target`.
    pub fn start(
        service: Arc<Service>,
        target: SocketAddr,
        follow: Follow,
    ) -> Result<Self, VmcSendError> {
        Self::start_for(service, target, follow, Whom::Followed)
    }

    /// Starts sending `whom` of the stream chosen by `follow`, from `target` on.
    pub fn start_for(
        service: Arc<Service>,
        target: SocketAddr,
        follow: Follow,
        whom: Whom,
    ) -> Result<Self, VmcSendError> {
        let bind: SocketAddr = if target.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).map_err(VmcSendError::Socket)?;
        socket.set_nonblocking(true).map_err(VmcSendError::Socket)?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            chosen: Mutex::new(None),
            person: Mutex::new(None),
            counters: Counters::default(),
            skipped: AtomicU64::new(0),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("livepose-vmc".into())
                .spawn(move || run(&service, &shared, &socket, target, follow, whom))
                .map_err(VmcSendError::Thread)?
        };
        match whom {
            Whom::Followed => tracing::info!("VMC: sending to {target} (OSC over UDP)"),
            Whom::Everyone { max } => tracing::info!(
                "VMC: sending every person (up to {max}) to {target} and the ports after it (OSC over UDP)"
            ),
        }
        Ok(Self {
            shared,
            target,
            thread: Some(thread),
        })
    }

    /// With [`Follow::Chosen`]: send this stream's results from now on (`None`: none).
    pub fn follow(&self, stream: Option<StreamId>) {
        *crate::sync::lock(&self.shared.chosen) = stream;
    }

    /// Send this person of the stream (`None`: the lowest id in view). With [`Whom::Everyone`], no
    /// effect.
    pub fn follow_person(&self, person: Option<PersonId>) {
        *crate::sync::lock(&self.shared.person) = person;
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn stats(&self) -> VmcStats {
        let c = &self.shared.counters;
        let results = c.results.load(Ordering::Relaxed);
        VmcStats {
            results,
            sent: c.sent.load(Ordering::Relaxed),
            send_failures: c.send_failures.load(Ordering::Relaxed),
            skipped: self.shared.skipped.load(Ordering::Relaxed),
            mean_cost_us: if results == 0 {
                0.0
            } else {
                c.cost_ns.load(Ordering::Relaxed) as f64 / results as f64 / 1e3
            },
            max_cost_us: c.max_cost_ns.load(Ordering::Relaxed) as f64 / 1e3,
            bundle_bytes: c.bundle_bytes.load(Ordering::Relaxed) as usize,
        }
    }
}

impl Drop for VmcSender {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            crate::sync::join(thread);
        }
        let s = self.stats();
        tracing::info!(
            "VMC: {} result(s), {} bundle(s) sent to {}, {} refused by the socket; {:.0} µs per result \
             (max {:.0})",
            s.results,
            s.sent,
            self.target,
            s.send_failures,
            s.mean_cost_us,
            s.max_cost_us
        );
    }
}

fn wanted_stream(service: &Service, shared: &Shared, follow: Follow) -> Option<StreamId> {
    match follow {
        Follow::Chosen => *crate::sync::lock(&shared.chosen),
        Follow::OldestClient => service
            .streams()
            .into_iter()
            .find(|s| matches!(s.kind, StreamKind::Remote { .. }))
            .map(|s| s.id),
    }
}

/// One person sent: their port, their solver, when they were last in view.
struct Slot {
    person: PersonId,
    port_offset: u16,
    solver: Solver,
    seen: Instant,
}

/// Who is sent where this result, keeping each person on their port.
struct Slots {
    whom: Whom,
    slots: Vec<Slot>,
}

impl Slots {
    fn new(whom: Whom) -> Self {
        Self {
            whom,
            slots: Vec::new(),
        }
    }

    /// The people to send for `result` and their port offsets (and solvers).
    fn assign(
        &mut self,
        result: &FrameResult,
        followed: Option<PersonId>,
        now: Instant,
    ) -> &mut [Slot] {
        match self.whom {
            Whom::Followed => {
                let person = followed
                    .filter(|id| result.people.iter().any(|p| p.id == *id))
                    .or_else(|| result.people.first().map(|p| p.id));
                match (person, self.slots.first_mut()) {
                    // Still the same person, or nobody in view: keep the solver (nobody eases to rest).
                    (Some(id), Some(slot)) if slot.person == id => slot.seen = now,
                    (None, Some(_)) => {}
                    // Another person: measure them afresh.
                    (Some(id), _) => {
                        self.slots = vec![Slot {
                            person: id,
                            port_offset: 0,
                            solver: Solver::new(),
                            seen: now,
                        }]
                    }
                    (None, None) => {}
                }
            }
            Whom::Everyone { max } => {
                for slot in &mut self.slots {
                    if result.people.iter().any(|p| p.id == slot.person) {
                        slot.seen = now;
                    }
                }
                self.slots
                    .retain(|s| now.saturating_duration_since(s.seen) <= SLOT_GRACE);
                for person in &result.people {
                    if self.slots.len() >= max || self.slots.iter().any(|s| s.person == person.id) {
                        continue;
                    }
                    let free = (0..u16::MAX)
                        .find(|o| self.slots.iter().all(|s| s.port_offset != *o))
                        .unwrap_or(0);
                    self.slots.push(Slot {
                        person: person.id,
                        port_offset: free,
                        solver: Solver::new(),
                        seen: now,
                    });
                }
            }
        }
        &mut self.slots
    }
}

fn run(
    service: &Service,
    shared: &Shared,
    socket: &UdpSocket,
    target: SocketAddr,
    follow: Follow,
    whom: Whom,
) {
    let started = Instant::now();
    let mut current: Option<Subscription> = None;
    let mut slots = Slots::new(whom);
    let mut warned = false;
    while !shared.stop.load(Ordering::Acquire) {
        let wanted = wanted_stream(service, shared, follow);
        if current.as_ref().map(Subscription::stream) != wanted {
            if let Some(old) = current.take() {
                shared
                    .skipped
                    .fetch_add(old.superseded(), Ordering::Relaxed);
            }
            current = wanted.and_then(|id| service.subscribe(id, 1));
            // Another stream is other people (or the same ones elsewhere): measure them again.
            slots = Slots::new(whom);
        }
        let Some(subscription) = &current else {
            std::thread::sleep(POLL);
            continue;
        };
        let Some(done) = subscription.recv_timeout(POLL) else {
            if subscription.is_closed()
                && let Some(old) = current.take()
            {
                shared
                    .skipped
                    .fetch_add(old.superseded(), Ordering::Relaxed);
            }
            continue;
        };
        let Ok(result) = &done.outcome else {
            continue;
        };
        let begin = Instant::now();
        let followed = *crate::sync::lock(&shared.person);
        let counters = &shared.counters;
        counters.results.fetch_add(1, Ordering::Relaxed);
        for slot in slots.assign(result, followed, begin) {
            let pose = slot.solver.solve(&result.of_person(slot.person));
            let rest = slot.solver.rest_pose();
            let to = SocketAddr::new(target.ip(), target.port().saturating_add(slot.port_offset));
            match encode(bundle(&rest, &pose, started.elapsed().as_secs_f32())) {
                Ok(bytes) => {
                    counters
                        .bundle_bytes
                        .store(bytes.len() as u64, Ordering::Relaxed);
                    match socket.send_to(&bytes, to) {
                        Ok(_) => {
                            counters.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            counters.send_failures.fetch_add(1, Ordering::Relaxed);
                            if !warned {
                                warned = true;
                                tracing::warn!(
                                    "VMC: cannot send to {to}: {e} (counted from now on)"
                                );
                            }
                        }
                    }
                }
                Err(e) => {
                    if !warned {
                        warned = true;
                        tracing::warn!("VMC: {e}");
                    }
                }
            }
        }
        let cost_ns = begin.elapsed().as_nanos() as u64;
        counters.cost_ns.fetch_add(cost_ns, Ordering::Relaxed);
        counters.max_cost_ns.fetch_max(cost_ns, Ordering::Relaxed);
    }
    if let Some(old) = current {
        shared
            .skipped
            .fetch_add(old.superseded(), Ordering::Relaxed);
    }
}
