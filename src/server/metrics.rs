//! `GET /metrics`: the server's counters in Prometheus's text exposition format (0.0.4), written by the
//! `prometheus` crate (TiKV's client, the most used Rust one; its `TextEncoder` writes the classic format
//! that every Prometheus version and `promtool check metrics` read). Counters are incremented where the
//! events happen (the connection threads); gauges that mirror the service are set when scraped.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::service::ServiceStats;

/// Seconds: 5 ms … ~2.6 s, doubling (a frame's inference is 10–60 ms here; a round trip under load
/// can reach hundreds of ms).
const BUCKETS_START_S: f64 = 0.005;
const BUCKETS: usize = 10;

/// Why the metrics could not be set up or written.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Every metric the server exposes.
pub struct Metrics {
    registry: Registry,
    /// Frames accepted from clients (passed the checks, handed to inference).
    pub frames_received: IntCounter,
    /// Frames replaced in their stream's latest-wins slot before inference took them.
    pub frames_dropped: IntCounter,
    /// Frames refused, by reason (the protocol's error codes: rate_limited, bad_image, …).
    pub frames_rejected: IntCounterVec,
    /// `pose_result`s sent.
    pub results: IntCounter,
    /// Inference of one frame, from leaving the slot to its result (s).
    pub inference_seconds: Histogram,
    /// From a frame's arrival to its result being written to the client (s).
    pub round_trip_seconds: Histogram,
    pub clients: IntGauge,
    /// People in view in every client's newest result, summed (when scraped).
    pub people_tracked: IntGauge,
    /// People in the results sent (a result with two people counts two).
    pub person_results: IntCounter,
    pub socketio_sessions: IntGauge,
    pub workers: IntGauge,
    pub busy_workers: IntGauge,
    pub queued_jobs: IntGauge,
    /// Engine loads after the first one of each worker (model or settings changes).
    pub engine_reloads: IntCounter,
    engine_loads_seen: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn seconds_histogram(name: &str, help: &str) -> Result<Histogram, prometheus::Error> {
    Histogram::with_opts(
        HistogramOpts::new(name, help).buckets(prometheus::exponential_buckets(
            BUCKETS_START_S,
            2.0,
            BUCKETS,
        )?),
    )
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let frames_received = IntCounter::new(
            "livepose_frames_received_total",
            "Frames accepted from clients and handed to inference.",
        )?;
        let frames_dropped = IntCounter::new(
            "livepose_frames_dropped_total",
            "Frames replaced in their stream's latest-wins slot before inference took them.",
        )?;
        let frames_rejected = IntCounterVec::new(
            Opts::new(
                "livepose_frames_rejected_total",
                "Frames refused, by reason (the protocol's error codes).",
            ),
            &["reason"],
        )?;
        let results = IntCounter::new("livepose_results_total", "pose_result messages sent.")?;
        let inference_seconds = seconds_histogram(
            "livepose_inference_seconds",
            "Inference of one frame, from leaving the input slot to its result.",
        )?;
        let round_trip_seconds = seconds_histogram(
            "livepose_round_trip_seconds",
            "From a frame's arrival to its result being written to the client.",
        )?;
        let clients = IntGauge::new(
            "livepose_clients",
            "Clients connected (WebSocket and Socket.IO).",
        )?;
        let people_tracked = IntGauge::new(
            "livepose_people_tracked",
            "People in view in every client's newest result, summed.",
        )?;
        let person_results = IntCounter::new(
            "livepose_person_results_total",
            "People in the pose_result messages sent (a result with two people counts two).",
        )?;
        let socketio_sessions = IntGauge::new(
            "livepose_socketio_sessions",
            "Socket.IO (Engine.IO) sessions open, connected to the namespace or not.",
        )?;
        let workers = IntGauge::new("livepose_workers", "Inference workers.")?;
        let busy_workers = IntGauge::new(
            "livepose_busy_workers",
            "Inference workers running a job when scraped.",
        )?;
        let queued_jobs = IntGauge::new(
            "livepose_queued_jobs",
            "Inference jobs waiting for a worker when scraped.",
        )?;
        let engine_reloads = IntCounter::new(
            "livepose_engine_reloads_total",
            "Engine loads after each worker's first (model or settings changes).",
        )?;
        registry.register(Box::new(frames_received.clone()))?;
        registry.register(Box::new(frames_dropped.clone()))?;
        registry.register(Box::new(frames_rejected.clone()))?;
        registry.register(Box::new(results.clone()))?;
        registry.register(Box::new(inference_seconds.clone()))?;
        registry.register(Box::new(round_trip_seconds.clone()))?;
        registry.register(Box::new(clients.clone()))?;
        registry.register(Box::new(people_tracked.clone()))?;
        registry.register(Box::new(person_results.clone()))?;
        registry.register(Box::new(socketio_sessions.clone()))?;
        registry.register(Box::new(workers.clone()))?;
        registry.register(Box::new(busy_workers.clone()))?;
        registry.register(Box::new(queued_jobs.clone()))?;
        registry.register(Box::new(engine_reloads.clone()))?;
        Ok(Self {
            registry,
            frames_received,
            frames_dropped,
            frames_rejected,
            results,
            inference_seconds,
            round_trip_seconds,
            clients,
            people_tracked,
            person_results,
            socketio_sessions,
            workers,
            busy_workers,
            queued_jobs,
            engine_reloads,
            engine_loads_seen: AtomicU64::new(0),
        })
    }

    /// A frame refused for `reason` (a protocol error code, snake_case).
    pub fn rejected(&self, reason: &str) {
        self.frames_rejected.with_label_values(&[reason]).inc();
    }

    /// The text exposition, with the service's gauges as they are now.
    pub fn render(
        &self,
        service: &ServiceStats,
        clients: usize,
        people: usize,
        socketio_sessions: usize,
    ) -> Result<Vec<u8>, MetricsError> {
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.clients.set(as_gauge(clients));
        self.people_tracked.set(as_gauge(people));
        self.socketio_sessions.set(as_gauge(socketio_sessions));
        self.workers.set(as_gauge(service.workers));
        self.busy_workers.set(as_gauge(service.busy_workers));
        self.queued_jobs.set(as_gauge(service.queued_jobs));
        // Every worker's first load is not a reload.
        let reloads = service.engine_loads.saturating_sub(service.workers as u64);
        let seen = self.engine_loads_seen.swap(reloads, Ordering::Relaxed);
        if reloads > seen {
            self.engine_reloads.inc_by(reloads - seen);
        }
        let mut out = Vec::with_capacity(4096);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_are_in_the_text_format() {
        let metrics = Metrics::new().unwrap();
        metrics.frames_received.inc_by(3);
        metrics.rejected("rate_limited");
        metrics.inference_seconds.observe(0.02);
        let stats = ServiceStats {
            workers: 2,
            engine_loads: 3,
            ..ServiceStats::default()
        };
        metrics.person_results.inc_by(5);
        let text = String::from_utf8(metrics.render(&stats, 4, 3, 2).unwrap()).unwrap();
        assert!(text.contains("livepose_frames_received_total 3"), "{text}");
        assert!(text.contains("livepose_people_tracked 3"), "{text}");
        assert!(text.contains("livepose_person_results_total 5"), "{text}");
        assert!(text.contains("livepose_frames_rejected_total{reason=\"rate_limited\"} 1"));
        assert!(
            text.contains("livepose_inference_seconds_bucket{le=\"0.02\"} 1"),
            "{text}"
        );
        assert!(text.contains("livepose_clients 4"));
        assert!(text.contains("livepose_socketio_sessions 2"));
        assert!(text.contains("livepose_engine_reloads_total 1"));
        // A second scrape with the same loads adds no reload.
        let text = String::from_utf8(metrics.render(&stats, 4, 3, 2).unwrap()).unwrap();
        assert!(text.contains("livepose_engine_reloads_total 1"));
    }
}
