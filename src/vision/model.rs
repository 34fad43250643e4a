//! ONNX Runtime set-up and the model files: where they are, that they are the right ones, and a thin
//! session wrapper that runs a model on a caller-owned input buffer.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use sha2::Digest as _;

use crate::vision::error::ModelError;

/// The ONNX Runtime shared library this build targets (ort's `api-31`).
pub const ORT_LIBRARY_NAME: &str = "libonnxruntime.so.1.31.1";

/// ONNX Runtime's official builds (1.31, PyPI's `onnxruntime` wheel that livepose loads) record usage
/// telemetry on Linux and macOS: a persistent device id and queued events in
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime/`, uploaded to Microsoft (ProcessInfo: OS, CPU, memory,
/// process name; then sessions, models and inference counts). This variable, set before the runtime is
/// loaded, turns all of it off (microsoft/onnxruntime#27379, #29843). The `livepose` binary sets it to
/// `1` first thing in `main` unless the user set it; [`runtime`] also turns telemetry events off for
/// programs that load the runtime through the library.
pub const TELEMETRY_OPT_OUT_VAR: &str = "ORT_DISABLE_TELEMETRY";

/// SHA-256 of every model file, checked on load (`models/SHA256SUMS`, made by `models/make_models.sh`).
const MODEL_SHA256SUMS: &str = include_str!("../../models/SHA256SUMS");

/// Where the loaded ONNX Runtime came from, or why it could not be loaded.
static RUNTIME: OnceLock<Result<(PathBuf, ort::environment::Environment), ModelError>> =
    OnceLock::new();

/// Candidate locations for the ONNX Runtime library, in search order.
pub fn runtime_search_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        paths.push(PathBuf::from(p));
    }
    // `make setup` puts it in `.ort/` of the project.
    paths.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".ort")
            .join(ORT_LIBRARY_NAME),
    );
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        paths.push(dir.join(ORT_LIBRARY_NAME));
        paths.push(dir.join("lib").join(ORT_LIBRARY_NAME));
    }
    paths.push(PathBuf::from("/usr/local/lib").join(ORT_LIBRARY_NAME));
    paths.push(PathBuf::from("/usr/lib").join(ORT_LIBRARY_NAME));
    paths
}

/// Loads ONNX Runtime once per process (from `ORT_DYLIB_PATH` or the set-up location) and returns its
/// environment. Never panics when the library is missing.
pub fn runtime() -> Result<&'static ort::environment::Environment, ModelError> {
    let loaded = RUNTIME.get_or_init(|| {
        let candidates = runtime_search_paths();
        let Some(path) = candidates.iter().find(|p| p.is_file()).cloned() else {
            let searched = candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ModelError::RuntimeMissing { searched });
        };
        let load_err = |reason: String| ModelError::RuntimeLoad {
            path: path.clone(),
            reason,
        };
        let builder = ort::init_from(&path).map_err(|e| load_err(e.to_string()))?;
        let env = builder
            .with_name("livepose")
            .with_telemetry(false)
            .build()
            .map_err(|e| load_err(e.to_string()))?;
        Ok((path, env))
    });
    match loaded {
        Ok((_, env)) => Ok(env),
        Err(ModelError::RuntimeMissing { searched }) => Err(ModelError::RuntimeMissing {
            searched: searched.clone(),
        }),
        Err(ModelError::RuntimeLoad { path, reason }) => Err(ModelError::RuntimeLoad {
            path: path.clone(),
            reason: reason.clone(),
        }),
        Err(other) => Err(ModelError::RuntimeLoad {
            path: PathBuf::new(),
            reason: other.to_string(),
        }),
    }
}

/// Every model file livepose uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelFile {
    PoseDetection,
    PoseLandmarkLite,
    PoseLandmarkFull,
    PoseLandmarkHeavy,
    PalmDetectionFull,
    HandLandmarkLite,
    HandLandmarkFull,
}

/// Input and outputs a model must have (batch 1, NHWC float input `input_1`).
pub struct ModelContract {
    pub input_shape: [i64; 4],
    pub outputs: &'static [(&'static str, &'static [i64])],
}

const POSE_LANDMARK_OUTPUTS: &[(&str, &[i64])] = &[
    ("Identity", &[1, 195]),
    ("Identity_1", &[1, 1]),
    ("Identity_2", &[1, 256, 256, 1]),
    ("Identity_3", &[1, 64, 64, 39]),
    ("Identity_4", &[1, 117]),
];
const HAND_LANDMARK_OUTPUTS: &[(&str, &[i64])] = &[
    ("Identity", &[1, 63]),
    ("Identity_1", &[1, 1]),
    ("Identity_2", &[1, 1]),
    ("Identity_3", &[1, 63]),
];

impl ModelFile {
    pub const ALL: [ModelFile; 7] = [
        ModelFile::PoseDetection,
        ModelFile::PoseLandmarkLite,
        ModelFile::PoseLandmarkFull,
        ModelFile::PoseLandmarkHeavy,
        ModelFile::PalmDetectionFull,
        ModelFile::HandLandmarkLite,
        ModelFile::HandLandmarkFull,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            ModelFile::PoseDetection => "pose_detection.onnx",
            ModelFile::PoseLandmarkLite => "pose_landmark_lite.onnx",
            ModelFile::PoseLandmarkFull => "pose_landmark_full.onnx",
            ModelFile::PoseLandmarkHeavy => "pose_landmark_heavy.onnx",
            ModelFile::PalmDetectionFull => "palm_detection_full.onnx",
            ModelFile::HandLandmarkLite => "hand_landmark_lite.onnx",
            ModelFile::HandLandmarkFull => "hand_landmark_full.onnx",
        }
    }

    /// A short name for errors and timings.
    pub fn name(self) -> &'static str {
        match self {
            ModelFile::PoseDetection => "pose_detection",
            ModelFile::PoseLandmarkLite => "pose_landmark_lite",
            ModelFile::PoseLandmarkFull => "pose_landmark_full",
            ModelFile::PoseLandmarkHeavy => "pose_landmark_heavy",
            ModelFile::PalmDetectionFull => "palm_detection_full",
            ModelFile::HandLandmarkLite => "hand_landmark_lite",
            ModelFile::HandLandmarkFull => "hand_landmark_full",
        }
    }

    pub fn contract(self) -> ModelContract {
        match self {
            ModelFile::PoseDetection => ModelContract {
                input_shape: [1, 224, 224, 3],
                outputs: &[("Identity", &[1, 2254, 12]), ("Identity_1", &[1, 2254, 1])],
            },
            ModelFile::PoseLandmarkLite
            | ModelFile::PoseLandmarkFull
            | ModelFile::PoseLandmarkHeavy => ModelContract {
                input_shape: [1, 256, 256, 3],
                outputs: POSE_LANDMARK_OUTPUTS,
            },
            ModelFile::PalmDetectionFull => ModelContract {
                input_shape: [1, 192, 192, 3],
                outputs: &[("Identity", &[1, 2016, 18]), ("Identity_1", &[1, 2016, 1])],
            },
            ModelFile::HandLandmarkLite | ModelFile::HandLandmarkFull => ModelContract {
                input_shape: [1, 224, 224, 3],
                outputs: HAND_LANDMARK_OUTPUTS,
            },
        }
    }

    /// The expected SHA-256 (lower-case hex) from `models/SHA256SUMS`.
    pub fn expected_sha256(self) -> Option<&'static str> {
        MODEL_SHA256SUMS.lines().find_map(|line| {
            let (hash, name) = line.split_once(char::is_whitespace)?;
            (name.trim_start_matches([' ', '*']) == self.file_name()).then_some(hash)
        })
    }
}

/// The models folder: `--models`, else `LIVEPOSE_MODELS`, else `./models`, else the one this crate was
/// built from.
pub fn default_models_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("LIVEPOSE_MODELS") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("models");
    if local.join(ModelFile::PoseDetection.file_name()).is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Session options shared by every model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// ONNX Runtime intra-op threads for each session.
    pub intra_threads: usize,
}

/// A loaded, verified model: an ONNX Runtime session plus the contract it was checked against.
pub struct OnnxModel {
    pub file: ModelFile,
    session: Session,
    input_shape: [usize; 4],
}

impl OnnxModel {
    /// Loads `dir/<file>`, checks its SHA-256 and its input/output names and shapes.
    pub fn load(dir: &Path, file: ModelFile, options: SessionOptions) -> Result<Self, ModelError> {
        let path = dir.join(file.file_name());
        if !path.is_file() {
            return Err(ModelError::Missing { path });
        }
        let bytes = std::fs::read(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let actual = hex(&sha2::Sha256::digest(&bytes));
        match file.expected_sha256() {
            Some(expected) if expected == actual => {}
            Some(expected) => {
                return Err(ModelError::HashMismatch {
                    path,
                    expected: expected.to_owned(),
                    actual,
                });
            }
            None => {
                return Err(ModelError::Contract {
                    name: file.name(),
                    what: "no SHA-256 listed in models/SHA256SUMS".into(),
                });
            }
        }
        let env = runtime()?;
        let ort_err = |source: ort::Error| ModelError::Ort {
            name: file.name(),
            source,
        };
        let session = Session::builder(env)
            .map_err(ort_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| ort_err(e.into()))?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(|e| ort_err(e.into()))?
            .with_intra_op_spinning(false)
            .map_err(|e| ort_err(e.into()))?
            .commit_from_memory(&bytes)
            .map_err(ort_err)?;
        let contract = file.contract();
        check_contract(&session, file, &contract)?;
        let input_shape = contract.input_shape.map(|d| d as usize);
        Ok(Self {
            file,
            session,
            input_shape,
        })
    }

    /// Input tensor size in floats.
    pub fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Runs the model on `input` (NHWC floats) and hands each named output's data to `read`.
    pub fn run<T>(
        &mut self,
        input: &[f32],
        read: impl FnOnce(&Outputs<'_>) -> T,
    ) -> Result<T, ModelError> {
        let name = self.file.name();
        let ort_err = |source: ort::Error| ModelError::Ort { name, source };
        let tensor = TensorRef::from_array_view((self.input_shape, input)).map_err(ort_err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input_1" => tensor])
            .map_err(ort_err)?;
        let mut slices: Vec<(&str, &[f32])> = Vec::with_capacity(outputs.len());
        for (key, _) in self.file.contract().outputs {
            let Some(value) = outputs.get(key) else {
                continue;
            };
            let (_, data) = value.try_extract_tensor::<f32>().map_err(ort_err)?;
            slices.push((key, data));
        }
        Ok(read(&Outputs { name, slices }))
    }
}

/// A model's outputs for one run, by name.
pub struct Outputs<'a> {
    name: &'static str,
    slices: Vec<(&'a str, &'a [f32])>,
}

impl Outputs<'_> {
    /// The output called `key`, with the element count the contract promised.
    pub fn get(&self, key: &str) -> Result<&[f32], ModelError> {
        self.slices
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| ModelError::Contract {
                name: self.name,
                what: format!("output {key} missing"),
            })
    }
}

fn check_contract(
    session: &Session,
    file: ModelFile,
    contract: &ModelContract,
) -> Result<(), ModelError> {
    let fail = |what: String| {
        Err(ModelError::Contract {
            name: file.name(),
            what,
        })
    };
    let inputs = session.inputs();
    if inputs.len() != 1 || inputs[0].name() != "input_1" {
        return fail(format!(
            "expected one input named input_1, found {:?}",
            inputs.iter().map(|i| i.name()).collect::<Vec<_>>()
        ));
    }
    let shape_of = |dtype: &ort::value::ValueType| {
        dtype
            .tensor_shape()
            .map(|s| s.iter().copied().collect::<Vec<i64>>())
    };
    if shape_of(inputs[0].dtype()).as_deref() != Some(&contract.input_shape[..]) {
        return fail(format!(
            "input shape {:?}, expected {:?}",
            shape_of(inputs[0].dtype()),
            contract.input_shape
        ));
    }
    for (name, shape) in contract.outputs {
        let Some(outlet) = session.outputs().iter().find(|o| o.name() == *name) else {
            return fail(format!("output {name} missing"));
        };
        if shape_of(outlet.dtype()).as_deref() != Some(*shape) {
            return fail(format!(
                "output {name} has shape {:?}, expected {shape:?}",
                shape_of(outlet.dtype())
            ));
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, lower-case hex (for tools and tests).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    Ok(hex(&sha2::Sha256::digest(std::fs::read(path)?)))
}
