//! How fast a tracked person's region moves, measured from one frame's region to the next, and the
//! region moved on by it (the tracker's prediction).

use crate::vision::roi::Roi;

/// How fast a person's region moves: per second, its centre (px), the log of its size, its rotation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoiMotion {
    pub centre_px_per_s: [f32; 2],
    pub log_size_per_s: f32,
    pub rotation_rad_per_s: f32,
}

impl RoiMotion {
    /// The motion from `before` (at `before_us`) to `after` (at `after_us`).
    pub(super) fn between(
        before: &Roi,
        before_us: i64,
        after: &Roi,
        after_us: i64,
    ) -> Option<Self> {
        let dt = (after_us - before_us) as f32 * 1e-6;
        if dt.is_nan() || dt <= 0.0 {
            return None;
        }
        let size = |r: &Roi| r.size_in_image[0].max(1e-3);
        let mut turn = after.rotation - before.rotation;
        if !turn.is_finite() {
            // (The loops below would never end.)
            return None;
        }
        while turn > std::f32::consts::PI {
            turn -= std::f32::consts::TAU;
        }
        while turn < -std::f32::consts::PI {
            turn += std::f32::consts::TAU;
        }
        let motion = Self {
            centre_px_per_s: [
                (after.center_in_image[0] - before.center_in_image[0]) / dt,
                (after.center_in_image[1] - before.center_in_image[1]) / dt,
            ],
            log_size_per_s: (size(after) / size(before)).ln() / dt,
            rotation_rad_per_s: turn / dt,
        };
        motion.is_finite().then_some(motion)
    }

    fn is_finite(&self) -> bool {
        self.centre_px_per_s[0].is_finite()
            && self.centre_px_per_s[1].is_finite()
            && self.log_size_per_s.is_finite()
            && self.rotation_rad_per_s.is_finite()
    }

    pub(super) fn blend(self, new: Self, gain: f32) -> Self {
        let mix = |a: f32, b: f32| a + (b - a) * gain;
        Self {
            centre_px_per_s: [
                mix(self.centre_px_per_s[0], new.centre_px_per_s[0]),
                mix(self.centre_px_per_s[1], new.centre_px_per_s[1]),
            ],
            log_size_per_s: mix(self.log_size_per_s, new.log_size_per_s),
            rotation_rad_per_s: mix(self.rotation_rad_per_s, new.rotation_rad_per_s),
        }
    }

    /// `roi` moved on by this motion for `dt_s` seconds.
    pub fn advance(&self, roi: &Roi, dt_s: f32) -> Roi {
        let grow = (self.log_size_per_s * dt_s).exp();
        Roi {
            center_in_image: [
                roi.center_in_image[0] + self.centre_px_per_s[0] * dt_s,
                roi.center_in_image[1] + self.centre_px_per_s[1] * dt_s,
            ],
            size_in_image: [roi.size_in_image[0] * grow, roi.size_in_image[1] * grow],
            rotation: roi.rotation + self.rotation_rad_per_s * dt_s,
        }
    }
}
