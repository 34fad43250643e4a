//! How well a solved clip follows its landmarks: the forward-kinematics position error of the joints
//! that sit on a landmark ([`crate::motion::JOINT_LANDMARKS`]) and the largest rotation of any bone
//! between consecutive frames.

use glam::Quat;

use crate::motion::skeleton::{Bone, HumanoidPose, RestPose};
use crate::vision::FrameResult;

/// The figures of one clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Quality {
    /// Frames with a tracked person.
    pub tracked_frames: usize,
    /// Joints whose landmark has visibility ≥ 0.5.
    pub joints_visible: usize,
    /// Of those, the joints measured: on a chain the solver follows ([`crate::motion::joint_errors_m`]).
    pub joints_measured: usize,
    pub mean_error_mm: f32,
    pub p95_error_mm: f32,
    pub max_error_mm: f32,
    /// The largest rotation of one bone's local rotation between two consecutive frames (radians).
    pub max_step_rad: f32,
    /// The bone and the frame (index of the later of the two) where it happened.
    pub max_step_at: Option<(Bone, usize)>,
    /// The largest step among bones whose confidence is ≥ 0.5 on both frames.
    pub max_confident_step_rad: f32,
}

/// The angle (radians, 0–π) between two rotations, whichever sign their quaternions have.
pub fn rotation_between(a: Quat, b: Quat) -> f32 {
    let dot = a.dot(b).abs().min(1.0);
    2.0 * dot.acos()
}

/// Measures solved `poses` (one per result, in order) on `rest`.
pub fn measure(rest: &RestPose, poses: &[HumanoidPose], results: &[FrameResult]) -> Quality {
    let mut errors_m: Vec<f32> = Vec::new();
    let mut tracked_frames = 0;
    let mut joints_visible = 0;
    for (pose, result) in poses.iter().zip(results) {
        if pose.tracked {
            tracked_frames += 1;
            if let Some(p) = &result.pose {
                joints_visible += crate::motion::JOINT_LANDMARKS
                    .iter()
                    .filter(|(i, _)| {
                        p.world_landmarks
                            .get(*i)
                            .is_some_and(|w| w.visibility >= 0.5)
                    })
                    .count();
            }
            errors_m.extend(crate::motion::joint_errors_m(rest, pose, result));
        }
    }
    errors_m.retain(|e| e.is_finite());
    errors_m.sort_by(f32::total_cmp);
    let mean_m = if errors_m.is_empty() {
        0.0
    } else {
        errors_m.iter().sum::<f32>() / errors_m.len() as f32
    };
    let quantile = |q: f32| -> f32 {
        if errors_m.is_empty() {
            return 0.0;
        }
        let i = ((errors_m.len() - 1) as f32 * q).round() as usize;
        errors_m[i.min(errors_m.len() - 1)]
    };
    let (mut max_step_rad, mut max_step_at, mut max_confident_step_rad) = (0.0_f32, None, 0.0_f32);
    for (k, pair) in poses.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        for bone in Bone::all() {
            let i = bone.index();
            let step = rotation_between(a.local[i], b.local[i]);
            if step > max_step_rad {
                max_step_rad = step;
                max_step_at = Some((bone, k + 1));
            }
            if a.confidence[i] >= 0.5 && b.confidence[i] >= 0.5 {
                max_confident_step_rad = max_confident_step_rad.max(step);
            }
        }
    }
    Quality {
        tracked_frames,
        joints_visible,
        joints_measured: errors_m.len(),
        mean_error_mm: mean_m * 1000.0,
        p95_error_mm: quantile(0.95) * 1000.0,
        max_error_mm: quantile(1.0) * 1000.0,
        max_step_rad,
        max_step_at,
        max_confident_step_rad,
    }
}

impl std::fmt::Display for Quality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tracked frames; joint position error mean {:.1} mm, p95 {:.1} mm, max {:.1} mm ({} of {} \
             visible joints on followed chains); largest step between frames {:.1}°",
            self.tracked_frames,
            self.mean_error_mm,
            self.p95_error_mm,
            self.max_error_mm,
            self.joints_measured,
            self.joints_visible,
            self.max_step_rad.to_degrees(),
        )?;
        if let Some((bone, frame)) = self.max_step_at {
            write!(f, " ({} at frame {frame})", bone.name())?;
        }
        write!(
            f,
            ", {:.1}° among confident bones",
            self.max_confident_step_rad.to_degrees()
        )
    }
}
