//! Present stage, 2D: the video frame as a texture and everyone's skeleton drawn over the frame it came
//! from (each person in a colour of their own, the first in the prototype's pink, with their id; hands
//! teal, outlined in their person's colour; joints as dots, low-visibility parts faded), with optional
//! interpolation between the last two results (each person only with themselves) and a mirror toggle.
//! A click on a person follows them.

use std::time::Instant;

use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::window::PrimaryWindow;

use crate::app::results::{Followed, Results, TimedResult};
use crate::app::stats::Stats;
use crate::app::{AppSettings, AppSystems};
use crate::interpolation::{blend_factor, interpolate};
use crate::vision::landmarks::{HAND_CONNECTIONS, POSE_CONNECTIONS};
use crate::vision::{FrameResult, Hand, Pose};

/// The prototype's colours.
pub const BODY_COLOR: Color = Color::srgb(1.0, 0.25, 0.63);
pub const HAND_COLOR: Color = Color::srgb(0.0, 0.78, 0.75);
/// Body parts below this visibility are faded.
const VISIBLE: f32 = 0.5;
const FADED_ALPHA: f32 = 0.3;
/// Logical px reserved on the right for the panel.
pub const PANEL_WIDTH: f32 = 330.0;

/// Where things go in the window (logical px, origin top-left).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct Layout {
    pub window: Vec2,
    /// Video rectangle: top-left and size.
    pub video_min: Vec2,
    pub video_size: Vec2,
    /// 3D view rectangle.
    pub view3d_min: Vec2,
    pub view3d_size: Vec2,
    pub scale_factor: f32,
}

impl Layout {
    /// Window logical px → 2D world coordinates (camera at the origin, y up).
    pub fn world_from_window(&self, p: Vec2) -> Vec2 {
        Vec2::new(p.x - self.window.x / 2.0, self.window.y / 2.0 - p.y)
    }
}

/// The video texture and what is on it.
#[derive(Resource, Default)]
pub struct Video {
    pub image: Handle<Image>,
    /// Size of the frame now in the texture.
    pub frame_size: UVec2,
    /// Sequence number and capture time of the frame now in the texture.
    pub frame_seq: Option<u64>,
    pub frame_captured_at: Option<Instant>,
}

#[derive(Component)]
struct VideoSprite;

/// Landmarks drawn: (index, window position).
pub type DrawnPoints = Vec<(usize, [f32; 2])>;

/// What the overlay drew last, in window logical px: recorded only in test mode (the headless plugin
/// inserts it when a state dump is asked for), read by the state dump.
#[derive(Resource, Default, Debug, Clone, serde::Serialize)]
pub struct OverlayDrawn {
    /// Body landmarks drawn at full strength (visibility ≥ 0.5): index and window position.
    pub body_points_in_window: Vec<(usize, [f32; 2])>,
    pub hand_points_in_window: Vec<[f32; 2]>,
    /// The blend factor used (1 = newest result as is).
    pub blend: f32,
    /// Each person's id label and where it was drawn.
    pub people: Vec<(crate::vision::PersonId, [f32; 2])>,
    /// Each person's body landmarks drawn at full strength: id, then (index, window position).
    pub people_points: Vec<(crate::vision::PersonId, DrawnPoints)>,
}

fn setup(mut commands: Commands, mut images: ResMut<Assets<Image>>) {
    let image = Image::new_fill(
        Extent3d {
            width: 2,
            height: 2,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        &[0, 0, 0, 255],
        TextureFormat::Rgba8UnormSrgb,
        // Render world only: each frame's pixels move to the render world (and into the texture that
        // is already there) instead of being cloned there and kept in the main world too.
        RenderAssetUsages::RENDER_WORLD,
    );
    let handle = images.add(image);
    commands.insert_resource(Video {
        image: handle.clone(),
        frame_size: UVec2::ZERO,
        frame_seq: None,
        frame_captured_at: None,
    });
    commands.spawn((
        Camera2d,
        // The egui panel is drawn by this camera: it covers the whole window.
        bevy_egui::PrimaryEguiContext,
        Msaa::Off,
        Camera {
            order: 0,
            ..default()
        },
    ));
    commands.spawn((
        VideoSprite,
        Sprite {
            image: handle,
            custom_size: Some(Vec2::ZERO),
            ..default()
        },
        Transform::default(),
    ));
}

fn update_layout(
    window: Single<&Window, With<PrimaryWindow>>,
    mut layout: ResMut<Layout>,
    video: Res<Video>,
) {
    let size = Vec2::new(window.width(), window.height());
    let available = Vec2::new((size.x - PANEL_WIDTH).max(64.0), size.y);
    let half = Vec2::new(available.x / 2.0, available.y);
    // The video keeps its aspect ratio inside the left half.
    let aspect = if video.frame_size.y > 0 {
        video.frame_size.x as f32 / video.frame_size.y as f32
    } else {
        4.0 / 3.0
    };
    let video_size = if half.x / half.y > aspect {
        Vec2::new(half.y * aspect, half.y)
    } else {
        Vec2::new(half.x, half.x / aspect)
    };
    let new = Layout {
        window: size,
        video_min: Vec2::new((half.x - video_size.x) / 2.0, (half.y - video_size.y) / 2.0),
        video_size,
        view3d_min: Vec2::new(half.x, 0.0),
        view3d_size: half,
        scale_factor: window.scale_factor(),
    };
    if *layout != new {
        *layout = new;
    }
}

/// The blend factor between the last two results now: time since the newest arrived over the interval
/// between the two frames' capture times (regular for a camera even when inference times vary), the
/// same for every source.
pub(crate) fn blend_now(previous: &TimedResult, newest: &TimedResult, now: Instant) -> f32 {
    let interval = newest
        .meta
        .captured_at
        .saturating_duration_since(previous.meta.captured_at);
    blend_factor(now.saturating_duration_since(newest.arrived), interval)
}

/// The result whose frame is on screen: the newest, or — while blending — whichever of the last two the
/// drawn skeleton is nearer to, so the skeleton stays on the frame it came from.
pub fn frame_to_show(results: &Results, interpolation: bool, now: Instant) -> Option<&TimedResult> {
    let newest = results.newest.as_ref()?;
    match (&results.previous, interpolation) {
        (Some(previous), true) => Some(if blend_now(previous, newest, now) < 0.5 {
            previous
        } else {
            newest
        }),
        _ => Some(newest),
    }
}

/// Copies the frame to show into the texture when it changes.
fn upload_frame(
    results: Res<Results>,
    settings: Res<AppSettings>,
    mut video: ResMut<Video>,
    mut images: ResMut<Assets<Image>>,
    mut stats: ResMut<Stats>,
    mut shown_frame: ResMut<crate::app::present::ShownFrame>,
) {
    let Some(shown) = frame_to_show(&results, settings.blends(), Instant::now()) else {
        return;
    };
    if video.frame_seq == Some(shown.meta.seq)
        && video.frame_captured_at == Some(shown.meta.captured_at)
    {
        return;
    }
    let frame = &shown.image;
    if !frame.is_valid() {
        return;
    }
    let Some(mut image) = images.get_mut(&video.image) else {
        return;
    };
    let size = Extent3d {
        width: frame.width,
        height: frame.height,
        depth_or_array_layers: 1,
    };
    if image.texture_descriptor.size != size {
        // The asset's pixels have moved to the render world: only its size changes here.
        image.texture_descriptor.size = size;
    }
    // The one copy per frame: RGB to RGBA (GPUs have no 3-byte texel format). The buffer moves to
    // the render world, which writes it into the texture it already has (a new one only when the size
    // changes): no clone of the asset, no new texture per frame.
    image.data = Some(rgba_from_rgb(&frame.data));
    video.frame_size = UVec2::new(frame.width, frame.height);
    video.frame_seq = Some(shown.meta.seq);
    video.frame_captured_at = Some(shown.meta.captured_at);
    shown_frame.0 = Some((shown.meta.seq, shown.meta.captured_at));
    stats.record_display(shown.meta.captured_at);
}

/// Opaque RGBA pixels from RGB ones.
fn rgba_from_rgb(rgb: &[u8]) -> Vec<u8> {
    // Filled with opaque alpha first, then each pixel's three bytes copied in: no capacity check per
    // pixel on this per-frame path.
    let mut rgba = vec![255; rgb.len() / 3 * 4];
    for (dst, src) in rgba.chunks_exact_mut(4).zip(rgb.chunks_exact(3)) {
        dst[..3].copy_from_slice(src);
    }
    rgba
}

fn place_sprite(
    layout: Res<Layout>,
    settings: Res<AppSettings>,
    mut sprite: Single<(&mut Sprite, &mut Transform), With<VideoSprite>>,
) {
    let center = layout.world_from_window(layout.video_min + layout.video_size / 2.0);
    let (sprite, transform) = &mut *sprite;
    sprite.custom_size = Some(layout.video_size);
    sprite.flip_x = settings.mirror;
    transform.translation = center.extend(0.0);
}

/// The result to draw now: the newest, or a blend of the last two.
pub fn result_to_draw(
    results: &Results,
    interpolation: bool,
    now: Instant,
) -> Option<(FrameResult, f32)> {
    let newest = results.newest.as_ref()?;
    match (&results.previous, interpolation) {
        (Some(previous), true) => {
            let t = blend_now(previous, newest, now);
            Some((interpolate(&previous.result, &newest.result, t), t))
        }
        _ => Some(((*newest.result).clone(), 1.0)),
    }
}

/// Each person's colour, by id: the prototype's pink for the first, then colours far from it, from each
/// other and from the hands' teal.
pub const PERSON_COLORS: [Color; 6] = [
    BODY_COLOR,
    Color::srgb(1.0, 0.62, 0.1),
    Color::srgb(0.45, 0.5, 1.0),
    Color::srgb(0.85, 0.95, 0.2),
    Color::srgb(0.75, 0.35, 1.0),
    Color::srgb(1.0, 0.3, 0.25),
];

/// The colour of person `id`.
pub fn person_color(id: crate::vision::PersonId) -> Color {
    PERSON_COLORS[(id.saturating_sub(1) % PERSON_COLORS.len() as u64) as usize]
}

/// Where each person's id label goes this update (window logical px), for the panel's painter.
#[derive(Resource, Default, Debug, Clone)]
pub struct PersonLabels {
    pub labels: Vec<PersonLabel>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PersonLabel {
    pub id: crate::vision::PersonId,
    pub pos_in_window: [f32; 2],
    pub color: Color,
    pub followed: bool,
}

#[allow(
    clippy::too_many_arguments,
    reason = "a Bevy system: one parameter per resource it reads or writes"
)]
fn draw_skeleton(
    results: Res<Results>,
    layout: Res<Layout>,
    video: Res<Video>,
    settings: Res<AppSettings>,
    followed: Res<Followed>,
    mut labels: ResMut<PersonLabels>,
    // Only in test mode (`--state`): what was drawn where, for the state dump.
    drawn: Option<ResMut<OverlayDrawn>>,
    mut gizmos: Gizmos,
) {
    labels.labels.clear();
    let Some((result, blend)) = result_to_draw(&results, settings.blends(), Instant::now()) else {
        return;
    };
    if video.frame_size.x == 0 || result.width != video.frame_size.x {
        return;
    }
    let scale = layout.video_size.x / video.frame_size.x as f32;
    let mirror = settings.mirror;
    let to_window = |p: [f32; 2]| {
        let u = if mirror {
            video.frame_size.x as f32 - p[0]
        } else {
            p[0]
        };
        layout.video_min + Vec2::new(u, p[1]) * scale
    };
    // Landmarks can lie outside the frame (a body cut by the image edge): draw only what is on the video.
    let (video_min, video_max) = (layout.video_min, layout.video_min + layout.video_size);
    let inside = |p: Vec2| p.cmpge(video_min).all() && p.cmple(video_max).all();
    // Lines are clipped a line's half-width inside, so that none spills into the 3D view beside.
    let (line_min, line_max) = (video_min + Vec2::ONE, video_max - Vec2::ONE);
    let mut line = |a: [f32; 2], b: [f32; 2], color: Color| {
        if let Some((a, b)) = clip_segment(to_window(a), to_window(b), line_min, line_max) {
            gizmos.line_2d(
                layout.world_from_window(a),
                layout.world_from_window(b),
                color,
            );
        }
    };
    let radius = (3.0 * scale).clamp(2.0, 5.0);
    let mut out = OverlayDrawn { blend, ..default() };
    // Everyone, each in their own colour; results without people (files from before) as one person.
    let people: Vec<(Option<crate::vision::PersonId>, &Pose, &[Hand])> = if result.people.is_empty()
    {
        result
            .pose
            .iter()
            .map(|p| (None, p, result.hands.as_slice()))
            .collect()
    } else {
        result
            .people
            .iter()
            .map(|p| (Some(p.id), &p.pose, p.hands.as_slice()))
            .collect()
    };
    for &(id, pose, hands) in &people {
        let color = id.map_or(BODY_COLOR, person_color);
        for &(a, b) in &POSE_CONNECTIONS {
            let (la, lb) = (&pose.landmarks[a], &pose.landmarks[b]);
            let visible = la.visibility.min(lb.visibility) >= VISIBLE;
            let c = if visible {
                color
            } else {
                color.with_alpha(FADED_ALPHA)
            };
            line(la.pos_in_image, lb.pos_in_image, c);
        }
        for hand in hands {
            for &(a, b) in &HAND_CONNECTIONS {
                line(
                    hand.landmarks[a].pos_in_image,
                    hand.landmarks[b].pos_in_image,
                    HAND_COLOR,
                );
            }
        }
        if let Some(id) = id
            && let Some(top) = pose
                .landmarks
                .iter()
                .filter(|l| l.visibility >= VISIBLE)
                .map(|l| to_window(l.pos_in_image))
                .filter(|p| inside(*p))
                .min_by(|a, b| a.y.total_cmp(&b.y))
        {
            labels.labels.push(PersonLabel {
                id,
                pos_in_window: [top.x, (top.y - 18.0).max(video_min.y)],
                color,
                followed: followed.current == Some(id),
            });
        }
    }
    // The top-level hands of a result without people (and the hands of nobody) as before.
    if result.people.is_empty() {
        for hand in &result.hands {
            for &(a, b) in &HAND_CONNECTIONS {
                line(
                    hand.landmarks[a].pos_in_image,
                    hand.landmarks[b].pos_in_image,
                    HAND_COLOR,
                );
            }
        }
    }
    for &(id, pose, hands) in &people {
        let color = id.map_or(BODY_COLOR, person_color);
        let followed_now = id.is_some() && followed.current == id;
        let mut points = Vec::new();
        for (i, l) in pose.landmarks.iter().enumerate() {
            let in_window = to_window(l.pos_in_image);
            if !inside(in_window) {
                continue;
            }
            let visible = l.visibility >= VISIBLE;
            let c = if visible {
                color
            } else {
                color.with_alpha(FADED_ALPHA)
            };
            gizmos.circle_2d(layout.world_from_window(in_window), radius, c);
            if visible {
                points.push((i, in_window.to_array()));
            }
            if visible && (followed_now || id.is_none() || people.len() == 1) {
                out.body_points_in_window.push((i, in_window.to_array()));
            }
        }
        if let Some(id) = id {
            out.people_points.push((id, points));
        }
        for hand in hands {
            for l in &hand.landmarks {
                let in_window = to_window(l.pos_in_image);
                if inside(in_window) {
                    let at = layout.world_from_window(in_window);
                    gizmos.circle_2d(at, radius * 0.7, HAND_COLOR);
                    // Outlined in the person's colour: whose hand it is.
                    gizmos.circle_2d(at, radius * 1.3, color);
                    out.hand_points_in_window.push(in_window.to_array());
                }
            }
        }
    }
    if result.people.is_empty() {
        for hand in &result.hands {
            for l in &hand.landmarks {
                let in_window = to_window(l.pos_in_image);
                if inside(in_window) {
                    gizmos.circle_2d(
                        layout.world_from_window(in_window),
                        radius * 0.7,
                        HAND_COLOR,
                    );
                    out.hand_points_in_window.push(in_window.to_array());
                }
            }
        }
    }
    out.people = labels
        .labels
        .iter()
        .map(|l| (l.id, l.pos_in_window))
        .collect();
    if let Some(mut drawn) = drawn {
        *drawn = out;
    }
}

/// A click on the video follows the person clicked (the nearest whose landmarks' box, with a margin,
/// holds the click).
fn follow_clicked(
    buttons: Res<ButtonInput<MouseButton>>,
    window: Single<&Window, With<PrimaryWindow>>,
    layout: Res<Layout>,
    video: Res<Video>,
    settings: Res<AppSettings>,
    results: Res<Results>,
    mut followed: ResMut<Followed>,
) {
    if !buttons.just_pressed(MouseButton::Left) || video.frame_size.x == 0 {
        return;
    }
    let Some(cursor) = window.cursor_position() else {
        return;
    };
    let Some(newest) = &results.newest else {
        return;
    };
    let scale = layout.video_size.x / video.frame_size.x as f32;
    let in_video = (cursor - layout.video_min) / scale;
    if in_video.x < 0.0
        || in_video.y < 0.0
        || in_video.x > video.frame_size.x as f32
        || in_video.y > video.frame_size.y as f32
    {
        return;
    }
    let x = if settings.mirror {
        video.frame_size.x as f32 - in_video.x
    } else {
        in_video.x
    };
    if let Some(id) = person_at(&newest.result, [x, in_video.y]) {
        followed.chosen = Some(id);
        followed.left = None;
    }
}

/// The person whose landmarks' box (grown by a tenth of its size) holds `pos_in_image`, the one whose
/// centre is nearest when several do.
pub fn person_at(result: &FrameResult, pos_in_image: [f32; 2]) -> Option<crate::vision::PersonId> {
    result
        .people
        .iter()
        .filter_map(|p| {
            let (mut min, mut max) = ([f32::MAX; 2], [f32::MIN; 2]);
            for l in p.pose.landmarks.iter().filter(|l| l.visibility >= VISIBLE) {
                for k in 0..2 {
                    min[k] = min[k].min(l.pos_in_image[k]);
                    max[k] = max[k].max(l.pos_in_image[k]);
                }
            }
            let margin = 0.1 * (max[0] - min[0]).max(max[1] - min[1]);
            let inside = (0..2)
                .all(|k| pos_in_image[k] >= min[k] - margin && pos_in_image[k] <= max[k] + margin);
            let centre = [(min[0] + max[0]) * 0.5, (min[1] + max[1]) * 0.5];
            let d = (centre[0] - pos_in_image[0]).powi(2) + (centre[1] - pos_in_image[1]).powi(2);
            inside.then_some((p.id, d))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id)
}

/// The part of the segment a–b inside the rectangle `min`–`max` (Liang–Barsky), if any.
pub fn clip_segment(a: Vec2, b: Vec2, min: Vec2, max: Vec2) -> Option<(Vec2, Vec2)> {
    if !(a.is_finite() && b.is_finite()) {
        return None;
    }
    let d = b - a;
    let (mut t0, mut t1) = (0.0_f32, 1.0_f32);
    // For each edge: p·t ≤ q keeps the point inside.
    for (p, q) in [
        (-d.x, a.x - min.x),
        (d.x, max.x - a.x),
        (-d.y, a.y - min.y),
        (d.y, max.y - a.y),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1 && t0.is_finite() && t1.is_finite()).then(|| (a + d * t0, a + d * t1))
}

fn configure_gizmos(mut store: ResMut<GizmoConfigStore>) {
    let (config, _) = store.config_mut::<DefaultGizmoConfigGroup>();
    config.line.width = 3.0;
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Layout>()
        .init_resource::<PersonLabels>()
        .init_resource::<crate::app::present::ShownFrame>()
        .add_systems(Startup, (setup, configure_gizmos))
        .add_systems(Update, follow_clicked.in_set(AppSystems::Receive))
        .add_systems(
            Update,
            (update_layout, upload_frame, place_sprite, draw_skeleton)
                .chain()
                .in_set(AppSystems::Present),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_clipped_to_the_video() {
        let (min, max) = (Vec2::new(0.0, 0.0), Vec2::new(100.0, 50.0));
        let inside = (Vec2::new(10.0, 10.0), Vec2::new(90.0, 40.0));
        assert_eq!(clip_segment(inside.0, inside.1, min, max), Some(inside));
        // Leaving through the bottom edge: cut where it crosses y = 50.
        let (a, b) = clip_segment(Vec2::new(50.0, 25.0), Vec2::new(50.0, 125.0), min, max).unwrap();
        assert_eq!((a, b), (Vec2::new(50.0, 25.0), Vec2::new(50.0, 50.0)));
        // Crossing the whole rectangle diagonally, both ends outside.
        let (a, b) =
            clip_segment(Vec2::new(-50.0, -25.0), Vec2::new(150.0, 75.0), min, max).unwrap();
        assert!(
            a.abs_diff_eq(Vec2::new(0.0, 0.0), 1e-4) && b.abs_diff_eq(Vec2::new(100.0, 50.0), 1e-4)
        );
        // Entirely outside, parallel to an edge, or not finite: nothing to draw.
        assert_eq!(
            clip_segment(Vec2::new(120.0, 0.0), Vec2::new(130.0, 40.0), min, max),
            None
        );
        assert_eq!(
            clip_segment(Vec2::new(-5.0, 10.0), Vec2::new(-5.0, 40.0), min, max),
            None
        );
        assert_eq!(
            clip_segment(Vec2::new(f32::NAN, 1.0), Vec2::new(5.0, 5.0), min, max),
            None
        );
    }

    #[test]
    fn rgb_pixels_become_opaque_rgba() {
        assert_eq!(
            rgba_from_rgb(&[1, 2, 3, 40, 50, 60]),
            vec![1, 2, 3, 255, 40, 50, 60, 255]
        );
        assert!(rgba_from_rgb(&[]).is_empty());
    }
}
