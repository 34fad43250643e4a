//! What the server benchmarks share (`load.rs`, `soak.rs`): a `livepose serve` child process, the clips'
//! frames, percentiles and /proc readings.

#![allow(dead_code, reason = "each benchmark uses part of it")]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use livepose::vision::image::MjpegFrames;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `livepose serve` on a free loopback port, killed when dropped. `LIVEPOSE_SERVE_ARGS` (space-separated)
/// adds options to every server the benchmarks start (e.g. `--max-people 1`).
pub struct ServerProcess {
    pub child: Child,
    pub addr: String,
}

impl ServerProcess {
    pub fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_livepose"))
            .args(["serve", "--listen", "127.0.0.1:0", "--stats-every", "0"])
            .args(extra)
            .args(
                std::env::var("LIVEPOSE_SERVE_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("livepose serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // "livepose: serving http://127.0.0.1:PORT/ (WebSocket …)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` value in its own unit ("VmRSS" in kB, "Threads" a count).
    pub fn status_value(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub fn rss_mib(&self) -> f64 {
        self.status_value("VmRSS") / 1024.0
    }

    pub fn threads(&self) -> u64 {
        self.status_value("Threads") as u64
    }

    pub fn open_fds(&self) -> u64 {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count() as u64
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `q` quantile of sorted values (nearest rank); NaN when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The JPEG frames of a fixture clip.
pub fn clip_frames(name: &str) -> Arc<Vec<Vec<u8>>> {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
    Arc::new(
        MjpegFrames::new(&bytes)
            .map(|f| f.unwrap().to_vec())
            .collect(),
    )
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
