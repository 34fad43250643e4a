//! Reading a session folder back. Tolerant of a recording that was cut off (the process killed, the
//! disk full): a torn last line of either JSONL file is left out, a frame whose bytes did not all reach
//! `frames.bin` is left out, and a missing or unreadable `session.json` leaves [`RecordedSession::info`] empty
//! (the frames and results still read). A bad line anywhere but at the end is an error: that is not a
//! crash's doing.

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::schema::parse_frame;
use crate::session::{
    FRAME_INDEX_FILE, FRAMES_FILE, FrameEntry, INFO_FILE, RESULTS_FILE, SessionError, SessionInfo,
};
use crate::vision::{FrameResult, PersonId};

/// One recorded result, with the recording's own keys.
#[derive(Clone, Debug)]
pub struct RecordedResult {
    /// Index of its frame in [`RecordedSession::frames`].
    pub frame: usize,
    pub seq: u64,
    pub t_ms: f64,
    pub queue_ms: f64,
    pub round_trip_ms: f64,
    pub dropped_by_stream: u64,
    /// Per-stage timings as recorded (stage name → ms).
    pub timings_ms: std::collections::BTreeMap<String, f64>,
    /// The person followed in the app when it was recorded (`None`: the lowest id in view).
    pub followed: Option<PersonId>,
    /// The result, with the person followed at the top level when they were in view (else as
    /// recorded: the lowest id).
    pub result: FrameResult,
    /// The line exactly as recorded.
    pub line: String,
}

#[derive(Deserialize)]
struct RecordedKeys {
    frame: usize,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    t_ms: f64,
    #[serde(default)]
    queue_ms: f64,
    #[serde(default)]
    round_trip_ms: f64,
    #[serde(default)]
    dropped_by_stream: u64,
    #[serde(default)]
    timings_ms: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    followed: Option<PersonId>,
}

/// A session folder, read.
#[derive(Debug)]
pub struct RecordedSession {
    pub dir: PathBuf,
    /// `session.json`, when it could be read.
    pub info: Option<SessionInfo>,
    /// Every frame whose bytes are complete, in recording order.
    pub frames: Vec<FrameEntry>,
    /// Every complete result line, in recording order.
    pub results: Vec<RecordedResult>,
    /// What was left out of a cut-off recording, for people ("torn last line of results.jsonl", …).
    pub warnings: Vec<String>,
    frames_file: Option<std::fs::File>,
}

/// Lines of a JSONL file; a last line without its newline is torn (returned apart).
fn lines(text: &str) -> (Vec<(usize, &str)>, Option<&str>) {
    let mut out: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect();
    let torn = out.pop().map(|(_, l)| l).filter(|l| !l.trim().is_empty());
    out.retain(|(_, l)| !l.trim().is_empty());
    (out, torn)
}

fn read_text(path: &Path) -> Result<String, SessionError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(SessionError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// What a session's text files say, checked against the length of `frames.bin`: the part of reading a
/// session that parses recorded bytes (no I/O, so it is fuzzed on its own: `fuzz/`).
#[derive(Debug)]
pub struct SessionIndex {
    pub info: Option<SessionInfo>,
    pub frames: Vec<FrameEntry>,
    pub results: Vec<RecordedResult>,
    pub warnings: Vec<String>,
}

impl SessionIndex {
    /// `info`: the bytes of `session.json`, or why it could not be read; `index_text` and
    /// `results_text`: `frames.jsonl` and `results.jsonl` (empty when missing); `frames_len`: the size of
    /// `frames.bin`. `dir` only names the files in errors.
    pub fn parse(
        dir: &Path,
        info: Result<&[u8], &str>,
        index_text: &str,
        results_text: &str,
        frames_len: u64,
    ) -> Result<Self, SessionError> {
        let mut warnings = Vec::new();
        let info = match info {
            Ok(bytes) => match serde_json::from_slice::<SessionInfo>(bytes) {
                Ok(info) => Some(info),
                Err(e) => {
                    warnings.push(format!("{INFO_FILE} unreadable ({e}); settings unknown"));
                    None
                }
            },
            Err(e) => {
                warnings.push(format!("{INFO_FILE}: {e}; settings unknown"));
                None
            }
        };
        let index_path = dir.join(FRAME_INDEX_FILE);
        let (index_lines, torn) = lines(index_text);
        if torn.is_some() {
            warnings.push(format!("torn last line of {FRAME_INDEX_FILE} left out"));
        }
        let mut frames = Vec::with_capacity(index_lines.len());
        let count = index_lines.len();
        for (k, (line_no, line)) in index_lines.into_iter().enumerate() {
            let entry: FrameEntry =
                serde_json::from_str(line).map_err(|e| SessionError::BadLine {
                    path: index_path.clone(),
                    line: line_no,
                    reason: e.to_string(),
                })?;
            if entry
                .offset
                .checked_add(entry.len)
                .is_none_or(|end| end > frames_len)
            {
                if k + 1 == count {
                    warnings.push(format!(
                        "last frame's bytes incomplete in {FRAMES_FILE}; left out"
                    ));
                    break;
                }
                return Err(SessionError::BadLine {
                    path: index_path.clone(),
                    line: line_no,
                    reason: format!("frame bytes beyond the end of {FRAMES_FILE}"),
                });
            }
            frames.push(entry);
        }

        let results_path = dir.join(RESULTS_FILE);
        let (result_lines, torn) = lines(results_text);
        if torn.is_some() {
            warnings.push(format!("torn last line of {RESULTS_FILE} left out"));
        }
        let mut results = Vec::with_capacity(result_lines.len());
        for (line_no, line) in result_lines {
            let bad = |reason: String| SessionError::BadLine {
                path: results_path.clone(),
                line: line_no,
                reason,
            };
            let keys: RecordedKeys = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            if keys.frame >= frames.len() {
                // Its frame was the torn one: the result goes with it.
                warnings.push(format!(
                    "result of frame {} without its frame; left out",
                    keys.frame
                ));
                continue;
            }
            let mut result = parse_frame(line).map_err(|e| bad(e.to_string()))?;
            if let Some(id) = keys.followed
                && result.people.iter().any(|p| p.id == id)
            {
                result = result.focused_on(id);
            }
            results.push(RecordedResult {
                frame: keys.frame,
                seq: keys.seq,
                t_ms: keys.t_ms,
                queue_ms: keys.queue_ms,
                round_trip_ms: keys.round_trip_ms,
                dropped_by_stream: keys.dropped_by_stream,
                timings_ms: keys.timings_ms,
                followed: keys.followed,
                result,
                line: line.to_owned(),
            });
        }
        Ok(Self {
            info,
            frames,
            results,
            warnings,
        })
    }
}

impl RecordedSession {
    pub fn open(dir: &Path) -> Result<Self, SessionError> {
        if !super::is_session_dir(dir) {
            return Err(SessionError::NotASession {
                path: dir.to_owned(),
                reason: format!("no {INFO_FILE} or {FRAME_INDEX_FILE}"),
            });
        }
        let info = std::fs::read(dir.join(INFO_FILE)).map_err(|e| e.to_string());
        let frames_path = dir.join(FRAMES_FILE);
        let frames_file = std::fs::File::open(&frames_path).ok();
        let frames_len = frames_file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        let index_text = read_text(&dir.join(FRAME_INDEX_FILE))?;
        let results_text = read_text(&dir.join(RESULTS_FILE))?;
        let index = SessionIndex::parse(
            dir,
            info.as_deref().map_err(String::as_str),
            &index_text,
            &results_text,
            frames_len,
        )?;
        Ok(Self {
            dir: dir.to_owned(),
            info: index.info,
            frames: index.frames,
            results: index.results,
            warnings: index.warnings,
            frames_file,
        })
    }

    /// The bytes of frame `index`, exactly as recorded.
    pub fn frame_bytes(&self, index: usize) -> Result<Vec<u8>, SessionError> {
        let entry = self.frames.get(index).ok_or(SessionError::NoSuchFrame {
            index,
            count: self.frames.len(),
        })?;
        let path = self.dir.join(FRAMES_FILE);
        let file = self
            .frames_file
            .as_ref()
            .ok_or_else(|| SessionError::Read {
                path: path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
        let mut bytes = vec![0; usize::try_from(entry.len).unwrap_or(0)];
        file.read_exact_at(&mut bytes, entry.offset)
            .map_err(|source| SessionError::Read { path, source })?;
        Ok(bytes)
    }

    /// The recorded results only, in order (for the exporters).
    pub fn frame_results(&self) -> Vec<FrameResult> {
        self.results.iter().map(|r| r.result.clone()).collect()
    }

    /// A name for people: the folder's name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "session".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_line_without_its_newline_is_torn() {
        let (complete, torn) = lines("{\"a\":1}\n{\"a\":2}\n{\"a\":");
        assert_eq!(complete, vec![(1, "{\"a\":1}"), (2, "{\"a\":2}")]);
        assert_eq!(torn, Some("{\"a\":"));
        let (complete, torn) = lines("{\"a\":1}\n\n");
        assert_eq!(complete, vec![(1, "{\"a\":1}")]);
        assert_eq!(torn, None);
        assert_eq!(lines(""), (vec![], None));
    }

    #[test]
    fn a_folder_without_a_session_is_named() {
        let err = RecordedSession::open(Path::new("/nonexistent-session")).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent-session is not a livepose session")
        );
    }

    fn frame_line(frame: usize, offset: u64, len: u64) -> String {
        serde_json::to_string(&FrameEntry {
            frame,
            seq: frame as u64,
            timestamp_us: frame as i64 * 33_000,
            t_ms: frame as f64 * 33.0,
            format: crate::frame::EncodedFormat::Jpeg,
            encoded_by_recorder: false,
            offset,
            len,
        })
        .unwrap()
            + "\n"
    }

    /// Found while writing the `session_files` fuzz target: an index line whose offset + len overflows
    /// u64 panicked (debug) or wrapped past the bounds check (release). Now it is a frame beyond the end.
    #[test]
    fn a_frame_range_that_overflows_is_beyond_the_end_not_a_panic() {
        let dir = Path::new("s");
        let index =
            frame_line(0, 0, 100) + &frame_line(1, u64::MAX - 10, 100) + &frame_line(2, 100, 1);
        let err = SessionIndex::parse(dir, Err("missing"), &index, "", 1000).unwrap_err();
        assert!(
            err.to_string().contains("frame bytes beyond the end"),
            "{err}"
        );
        // As the last line it is the torn frame of a cut-off recording: left out with a warning.
        let index = frame_line(0, 0, 100) + &frame_line(1, u64::MAX - 10, 100);
        let parsed = SessionIndex::parse(dir, Err("missing"), &index, "", 1000).unwrap();
        assert_eq!(parsed.frames.len(), 1);
        assert!(parsed.warnings.iter().any(|w| w.contains("incomplete")));
    }
}
