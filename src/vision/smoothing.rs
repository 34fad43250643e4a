//! Landmark smoothing: MediaPipe's One Euro filter (the default, with MediaPipe's parameters), the
//! prototype's exponential moving average, or none. Timestamps are capture times in µs.

use crate::vision::landmarks::{ImageLandmark, WorldLandmark};

/// One Euro parameters (MediaPipe's `LandmarksSmoothingCalculatorOptions.OneEuroFilter`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OneEuroParams {
    /// Cutoff frequency (Hz) when the value is still; lower = smoother.
    pub min_cutoff: f64,
    /// How fast the cutoff rises with speed; higher = less lag.
    pub beta: f64,
    /// Cutoff (Hz) of the speed estimate.
    pub derivate_cutoff: f64,
}

/// MediaPipe pose image landmarks.
pub const POSE_LANDMARK_FILTER: OneEuroParams = OneEuroParams {
    min_cutoff: 0.05,
    beta: 80.0,
    derivate_cutoff: 1.0,
};
/// MediaPipe pose world landmarks (no value scaling).
pub const POSE_WORLD_FILTER: OneEuroParams = OneEuroParams {
    min_cutoff: 0.1,
    beta: 40.0,
    derivate_cutoff: 1.0,
};
/// MediaPipe pose auxiliary (ROI) landmarks.
pub const POSE_AUX_FILTER: OneEuroParams = OneEuroParams {
    min_cutoff: 0.01,
    beta: 10.0,
    derivate_cutoff: 1.0,
};
/// MediaPipe's visibility low-pass weight of the new value.
pub const VISIBILITY_ALPHA: f32 = 0.1;
/// The prototype's EMA weight of the new value.
pub const PROTOTYPE_EMA_ALPHA: f32 = 0.7;
/// Sampling rate assumed before two timestamps are known.
const DEFAULT_FREQUENCY_HZ: f64 = 30.0;
/// Below this object scale (px) value scaling is meaningless and landmarks pass through.
const MIN_OBJECT_SCALE: f32 = 1e-6;

/// Adjusts MediaPipe's One Euro filters: both factors multiply the parameters of every filter (image,
/// world and auxiliary landmarks), so their balance stays MediaPipe's. 1 and 1 is MediaPipe.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OneEuroTuning {
    /// Multiplies `min_cutoff`: below 1 smooths still landmarks more (less jitter, more lag).
    pub min_cutoff_scale: f64,
    /// Multiplies `beta`: above 1 follows fast motion more closely (less lag, more jitter).
    pub beta_scale: f64,
}

impl OneEuroTuning {
    /// MediaPipe's own parameters.
    pub const MEDIAPIPE: OneEuroTuning = OneEuroTuning {
        min_cutoff_scale: 1.0,
        beta_scale: 1.0,
    };

    /// `params` with this tuning applied (non-finite or non-positive factors count as 1).
    pub fn apply(self, params: OneEuroParams) -> OneEuroParams {
        let factor = |f: f64| if f.is_finite() && f > 0.0 { f } else { 1.0 };
        OneEuroParams {
            min_cutoff: params.min_cutoff * factor(self.min_cutoff_scale),
            beta: params.beta * factor(self.beta_scale),
            derivate_cutoff: params.derivate_cutoff,
        }
    }
}

impl Default for OneEuroTuning {
    fn default() -> Self {
        Self::MEDIAPIPE
    }
}

/// How landmarks are smoothed over time.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SmoothingMethod {
    /// MediaPipe's One Euro filters (image, world, auxiliary) and visibility low-pass, optionally tuned.
    OneEuro(OneEuroTuning),
    /// `smoothed = alpha · new + (1 − alpha) · previous`, per coordinate (the prototype used 0.7).
    Ema { alpha: f32 },
    /// Raw model output.
    Off,
}

/// A first-order low-pass filter (MediaPipe's `LowPassFilter`).
#[derive(Clone, Copy, Debug, Default)]
struct LowPass {
    initialized: bool,
    raw: f32,
    stored: f32,
}

impl SmoothingMethod {
    /// MediaPipe's One Euro filters with MediaPipe's parameters (the default).
    pub const ONE_EURO: SmoothingMethod = SmoothingMethod::OneEuro(OneEuroTuning::MEDIAPIPE);

    pub fn is_one_euro(self) -> bool {
        matches!(self, SmoothingMethod::OneEuro(_))
    }
}

impl LowPass {
    fn apply(&mut self, value: f32, alpha: f32) -> f32 {
        let result = if self.initialized {
            alpha * value + (1.0 - alpha) * self.stored
        } else {
            value
        };
        self.initialized = true;
        self.raw = value;
        self.stored = result;
        result
    }
}

/// MediaPipe's `OneEuroFilter` for one scalar.
#[derive(Clone, Copy, Debug)]
pub struct OneEuro {
    params: OneEuroParams,
    frequency: f64,
    last_time_us: Option<i64>,
    x: LowPass,
    dx: LowPass,
}

impl OneEuro {
    pub fn new(params: OneEuroParams) -> Self {
        Self {
            params,
            frequency: DEFAULT_FREQUENCY_HZ,
            last_time_us: None,
            x: LowPass::default(),
            dx: LowPass::default(),
        }
    }

    /// Filters `value` at `timestamp_us`; `value_scale` converts the value's units into "object sizes" so
    /// the same parameters suit near and far objects. A timestamp not after the last returns `value` as is.
    pub fn apply(&mut self, timestamp_us: i64, value_scale: f64, value: f32) -> f32 {
        if let Some(last) = self.last_time_us {
            if timestamp_us <= last {
                return value;
            }
            self.frequency = 1.0 / ((timestamp_us - last) as f64 * 1e-6);
        }
        self.last_time_us = Some(timestamp_us);
        let dvalue = if self.x.initialized {
            f64::from(value - self.x.raw) * value_scale * self.frequency
        } else {
            0.0
        };
        let edvalue = self
            .dx
            .apply(dvalue as f32, self.alpha(self.params.derivate_cutoff));
        let cutoff = self.params.min_cutoff + self.params.beta * f64::from(edvalue).abs();
        self.x.apply(value, self.alpha(cutoff))
    }

    fn alpha(&self, cutoff: f64) -> f32 {
        let te = 1.0 / self.frequency;
        let tau = 1.0 / (2.0 * std::f64::consts::PI * cutoff);
        (1.0 / (1.0 + tau / te)) as f32
    }
}

/// Filters a fixed-length list of 3D points, one filter per coordinate.
#[derive(Clone, Debug)]
pub struct PointsFilter {
    method: SmoothingMethod,
    params: OneEuroParams,
    one_euro: Vec<[OneEuro; 3]>,
    ema: Vec<Option<[f32; 3]>>,
}

impl PointsFilter {
    pub fn new(method: SmoothingMethod, params: OneEuroParams) -> Self {
        Self {
            method,
            params,
            one_euro: Vec::new(),
            ema: Vec::new(),
        }
    }

    pub fn reset(&mut self) {
        self.one_euro.clear();
        self.ema.clear();
    }

    pub fn method(&self) -> SmoothingMethod {
        self.method
    }

    /// Switches to `method` from the next value on. New parameters of the same filter keep its state
    /// (no jump, no re-initialisation); another filter starts afresh from the next value.
    pub fn set_method(&mut self, method: SmoothingMethod) {
        match (self.method, method) {
            (SmoothingMethod::OneEuro(_), SmoothingMethod::OneEuro(tuning)) => {
                let params = tuning.apply(self.params);
                for filters in &mut self.one_euro {
                    for f in filters {
                        f.params = params;
                    }
                }
            }
            (SmoothingMethod::Ema { .. }, SmoothingMethod::Ema { .. })
            | (SmoothingMethod::Off, SmoothingMethod::Off) => {}
            _ => self.reset(),
        }
        self.method = method;
    }

    /// Whether the filter holds state from earlier values.
    pub fn is_primed(&self) -> bool {
        !self.one_euro.is_empty() || !self.ema.is_empty()
    }

    /// Smooths `points` in place. `object_scale` is the object's size in the points' units (`None` = no
    /// value scaling, as MediaPipe's `disable_value_scaling`).
    pub fn apply(&mut self, timestamp_us: i64, object_scale: Option<f32>, points: &mut [[f32; 3]]) {
        match self.method {
            SmoothingMethod::Off => {}
            SmoothingMethod::Ema { alpha } => {
                if self.ema.len() != points.len() {
                    self.ema = vec![None; points.len()];
                }
                for (p, state) in points.iter_mut().zip(&mut self.ema) {
                    if let Some(prev) = state {
                        for k in 0..3 {
                            p[k] = alpha * p[k] + (1.0 - alpha) * prev[k];
                        }
                    }
                    *state = Some(*p);
                }
            }
            SmoothingMethod::OneEuro(tuning) => {
                let value_scale = match object_scale {
                    None => 1.0,
                    Some(scale) if scale < MIN_OBJECT_SCALE || !scale.is_finite() => return,
                    Some(scale) => 1.0 / f64::from(scale),
                };
                if self.one_euro.len() != points.len() {
                    self.one_euro =
                        vec![[OneEuro::new(tuning.apply(self.params)); 3]; points.len()];
                }
                for (p, filters) in points.iter_mut().zip(&mut self.one_euro) {
                    for k in 0..3 {
                        p[k] = filters[k].apply(timestamp_us, value_scale, p[k]);
                    }
                }
            }
        }
    }
}

/// Smooths visibilities with MediaPipe's low-pass (One Euro mode only).
#[derive(Clone, Debug, Default)]
pub struct VisibilityFilter {
    filters: Vec<LowPass>,
}

impl VisibilityFilter {
    pub fn reset(&mut self) {
        self.filters.clear();
    }

    /// Whether the filter holds state from a previous frame.
    pub fn is_primed(&self) -> bool {
        !self.filters.is_empty()
    }

    pub fn apply(
        &mut self,
        visibilities: impl ExactSizeIterator<Item = f32>,
        mut write: impl FnMut(usize, f32),
    ) {
        if self.filters.len() != visibilities.len() {
            self.filters = vec![LowPass::default(); visibilities.len()];
        }
        for (i, (v, f)) in visibilities.zip(&mut self.filters).enumerate() {
            write(i, f.apply(v, VISIBILITY_ALPHA));
        }
    }
}

/// Image landmarks as filter input: x, y in px and z scaled like x (`depth × image width`), as MediaPipe
/// filters normalised landmarks in absolute units.
pub fn points_from_image_landmarks(landmarks: &[ImageLandmark], image_width: f32) -> Vec<[f32; 3]> {
    landmarks
        .iter()
        .map(|l| [l.pos_in_image[0], l.pos_in_image[1], l.depth * image_width])
        .collect()
}

pub fn write_image_points(landmarks: &mut [ImageLandmark], points: &[[f32; 3]], image_width: f32) {
    for (l, p) in landmarks.iter_mut().zip(points) {
        l.pos_in_image = [p[0], p[1]];
        l.depth = p[2] / image_width;
    }
}

pub fn points_from_world_landmarks(landmarks: &[WorldLandmark]) -> Vec<[f32; 3]> {
    landmarks.iter().map(|l| l.pos_in_world).collect()
}

pub fn write_world_points(landmarks: &mut [WorldLandmark], points: &[[f32; 3]]) {
    for (l, p) in landmarks.iter_mut().zip(points) {
        l.pos_in_world = *p;
    }
}

/// MediaPipe's object scale of a set of points: the mean of their bounding box's width and height.
pub fn object_scale(points: &[[f32; 3]]) -> f32 {
    let (mut min, mut max) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in points {
        for k in 0..2 {
            min[k] = min[k].min(p[k]);
            max[k] = max[k].max(p[k]);
        }
    }
    ((max[0] - min[0]) + (max[1] - min[1])) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_US: i64 = 33_333;

    #[test]
    fn one_euro_step_response_converges_without_overshoot() {
        let mut f = OneEuro::new(POSE_LANDMARK_FILTER);
        assert_eq!(f.apply(FRAME_US, 1.0 / 100.0, 0.0), 0.0);
        let mut prev = 0.0;
        let mut outputs = Vec::new();
        for k in 2..60 {
            let y = f.apply(k * FRAME_US, 1.0 / 100.0, 10.0);
            assert!(
                y >= prev - 1e-6 && y <= 10.0 + 1e-5,
                "monotone and bounded: {y} after {prev}"
            );
            prev = y;
            outputs.push(y);
        }
        // A fast step: beta makes the first response large (> 50 % of the step) ...
        assert!(outputs[0] > 5.0, "first response {}", outputs[0]);
        // ... and it settles on the new value.
        assert!((outputs.last().unwrap() - 10.0).abs() < 0.05);
    }

    #[test]
    fn one_euro_smooths_small_jitter_strongly() {
        // ±0.5 px noise on a 200 px object: the output moves far less than the input.
        let mut f = OneEuro::new(POSE_LANDMARK_FILTER);
        let mut out = Vec::new();
        for k in 1..100_i64 {
            let noisy = if k % 2 == 0 { 100.5 } else { 99.5 };
            out.push(f.apply(k * FRAME_US, 1.0 / 200.0, noisy));
        }
        let spread = out[50..].iter().cloned().fold(f32::MIN, f32::max)
            - out[50..].iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread < 0.3, "spread {spread}");
    }

    #[test]
    fn one_euro_ignores_non_increasing_time() {
        let mut f = OneEuro::new(POSE_WORLD_FILTER);
        f.apply(1000, 1.0, 1.0);
        assert_eq!(f.apply(1000, 1.0, 5.0), 5.0);
        assert_eq!(f.apply(500, 1.0, 7.0), 7.0);
    }

    #[test]
    fn ema_matches_its_formula() {
        let mut f = PointsFilter::new(SmoothingMethod::Ema { alpha: 0.7 }, POSE_LANDMARK_FILTER);
        let mut p = [[10.0, 0.0, 0.0]];
        f.apply(1, None, &mut p);
        assert_eq!(p[0][0], 10.0);
        let mut q = [[20.0, 0.0, 0.0]];
        f.apply(2, None, &mut q);
        assert!((q[0][0] - 17.0).abs() < 1e-5);
        f.reset();
        let mut r = [[0.0, 0.0, 0.0]];
        f.apply(3, None, &mut r);
        assert_eq!(r[0][0], 0.0);
    }

    /// Spread of the filtered output over the last half of ±0.5 px jitter on a 200 px object.
    fn jitter_spread(method: SmoothingMethod) -> f32 {
        let mut f = PointsFilter::new(method, POSE_LANDMARK_FILTER);
        let mut out = Vec::new();
        for k in 1..100_i64 {
            let mut p = [[if k % 2 == 0 { 100.5 } else { 99.5 }, 0.0, 0.0]];
            f.apply(k * FRAME_US, Some(200.0), &mut p);
            out.push(p[0][0]);
        }
        out[50..].iter().cloned().fold(f32::MIN, f32::max)
            - out[50..].iter().cloned().fold(f32::MAX, f32::min)
    }

    #[test]
    fn one_euro_tuning_scales_mediapipes_parameters() {
        assert_eq!(
            OneEuroTuning::MEDIAPIPE.apply(POSE_WORLD_FILTER),
            POSE_WORLD_FILTER
        );
        let tuned = OneEuroTuning {
            min_cutoff_scale: 2.0,
            beta_scale: 0.5,
        }
        .apply(POSE_LANDMARK_FILTER);
        assert_eq!((tuned.min_cutoff, tuned.beta), (0.1, 40.0));
        // Nonsense factors leave MediaPipe's values.
        let nonsense = OneEuroTuning {
            min_cutoff_scale: f64::NAN,
            beta_scale: -3.0,
        };
        assert_eq!(nonsense.apply(POSE_AUX_FILTER), POSE_AUX_FILTER);
        // A higher cutoff lets more jitter through, a lower one less.
        let spread = |min_cutoff_scale| {
            jitter_spread(SmoothingMethod::OneEuro(OneEuroTuning {
                min_cutoff_scale,
                beta_scale: 1.0,
            }))
        };
        let (steadier, mediapipe, livelier) = (spread(0.2), spread(1.0), spread(20.0));
        assert!(
            steadier < mediapipe && mediapipe < livelier,
            "{steadier} {mediapipe} {livelier}"
        );
        assert!(
            mediapipe < jitter_spread(SmoothingMethod::Off),
            "smoothing reduces jitter"
        );
    }
}
