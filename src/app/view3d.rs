//! Present stage, 3D view: the camera (orbit by dragging, zoom with the wheel) in the right half of the
//! window, its light and ground grid, and the landmarks view: the world landmarks (metres) as they are —
//! joints as spheres, bones as cylinders, hands attached at the body's wrists — a toggle (`--view3d`,
//! the panel) that can be drawn over the rigged avatar (`app::avatar`). Same colours as the overlay.
//! Reads [`Results`] and the avatar's drawn root ([`AvatarRoot`]): with the avatar shown, the landmarks
//! stand on its hips and the camera follows it.
//!
//! Drawn less: the camera renders into a texture at [`VIEW3D_RESOLUTION`] of the view's size (the 2D
//! camera shows it scaled up, as a sprite), and only in the updates where something in the view moved
//! (a joint, a bone, the camera) or the view was resized; otherwise the texture keeps the last picture.
//! In software rendering the fill is most of a frame's cost.

use bevy::camera::visibility::RenderLayers;
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::prelude::*;
use bevy::window::PrimaryWindow;

use crate::app::overlay::{BODY_COLOR, HAND_COLOR, Layout, result_to_draw};
use crate::app::results::Results;
use crate::app::scene3d::{AvatarRoot, VIEW3D_LAYER, set_material};
use crate::app::{AppSettings, PresentSystems};
use crate::vision::landmarks::{
    HAND_CONNECTIONS, HAND_LANDMARK_COUNT, Hand, POSE_CONNECTIONS, POSE_LANDMARK_COUNT, Pose,
};

/// The 3D view's render resolution, as a fraction of its size on screen.
pub const VIEW3D_RESOLUTION: f32 = 0.5;

/// Height the camera looks at above the followed hips' floor point (m).
const LOOK_AT_HEIGHT_M: f32 = 0.9;
const JOINT_RADIUS_M: f32 = 0.025;
const HAND_JOINT_RADIUS_M: f32 = 0.008;
const BONE_RADIUS_M: f32 = 0.015;
const HAND_BONE_RADIUS_M: f32 = 0.005;
const VISIBLE: f32 = 0.5;
/// Body wrists in BlazePose order (person's left, right).
const LEFT_WRIST: usize = 15;
const RIGHT_WRIST: usize = 16;

/// Gizmos drawn only in the 3D view (the ground grid).
#[derive(Default, Reflect, GizmoConfigGroup)]
pub struct View3dGizmos;

/// The 3D view's camera (its transform and projection are in the headless state dump).
#[derive(Component)]
pub(crate) struct View3dCamera;

/// The sprite that shows the 3D view's texture in the window.
#[derive(Component)]
struct View3dSprite;

/// The texture the 3D view renders into, and whether it must render this update.
#[derive(Resource)]
pub(crate) struct View3dTarget {
    pub image: Handle<Image>,
    /// Renders of the view (updates where something in it changed), and updates in all.
    pub renders: u64,
    pub updates: u64,
    resized: bool,
}

/// Which landmark a sphere shows.
#[derive(Component, Clone, Copy)]
enum Joint3d {
    Body(usize),
    Hand { slot: usize, index: usize },
}

/// Which landmarks a bone joins.
#[derive(Component, Clone, Copy)]
enum Bone3d {
    Body(usize, usize),
    Hand { slot: usize, a: usize, b: usize },
}

/// Orbit camera state: angles in radians, distance in metres.
#[derive(Resource)]
struct Orbit {
    yaw: f32,
    pitch: f32,
    distance: f32,
}

impl Default for Orbit {
    fn default() -> Self {
        Self {
            yaw: 0.5,
            pitch: 0.25,
            distance: 3.0,
        }
    }
}

#[derive(Resource)]
struct AvatarMaterials {
    body: Handle<StandardMaterial>,
    body_faded: Handle<StandardMaterial>,
    hand: Handle<StandardMaterial>,
}

fn setup(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut images: ResMut<Assets<Image>>,
) {
    let layer = RenderLayers::layer(VIEW3D_LAYER);
    // Resized to the view in `update_camera`.
    let mut image = Image::new_target_texture(
        2,
        2,
        bevy::render::render_resource::TextureFormat::Rgba8UnormSrgb,
        None,
    );
    // Scaled up on screen: filtered, not blocky.
    image.sampler = bevy::image::ImageSampler::linear();
    let target = images.add(image);
    commands.spawn((
        View3dCamera,
        Camera3d::default(),
        // No MSAA: it multiplies the fill cost, which dominates in software rendering.
        Msaa::Off,
        Camera {
            // Before the 2D camera, which shows the texture.
            order: -1,
            clear_color: ClearColorConfig::Custom(Color::srgb(0.12, 0.12, 0.15)),
            ..default()
        },
        bevy::camera::RenderTarget::Image(target.clone().into()),
        Transform::from_xyz(0.0, 1.0, 3.0).looking_at(Vec3::new(0.0, 0.9, 0.0), Vec3::Y),
        layer.clone(),
    ));
    commands.spawn((
        View3dSprite,
        Sprite {
            image: target.clone(),
            custom_size: Some(Vec2::ZERO),
            ..default()
        },
        Transform::default(),
    ));
    commands.insert_resource(View3dTarget {
        image: target,
        renders: 0,
        updates: 0,
        resized: true,
    });
    commands.spawn((
        DirectionalLight {
            illuminance: 8_000.0,
            ..default()
        },
        Transform::from_xyz(2.0, 4.0, 3.0).looking_at(Vec3::ZERO, Vec3::Y),
        layer.clone(),
    ));
    let material = |color: Color, alpha_mode: AlphaMode| StandardMaterial {
        base_color: color,
        alpha_mode,
        perceptual_roughness: 0.6,
        ..default()
    };
    let mats = AvatarMaterials {
        body: materials.add(material(BODY_COLOR, AlphaMode::Opaque)),
        body_faded: materials.add(material(BODY_COLOR.with_alpha(0.25), AlphaMode::Blend)),
        hand: materials.add(material(HAND_COLOR, AlphaMode::Opaque)),
    };
    // Low-poly on purpose: ~90 of each are drawn, and software rendering pays per triangle.
    let sphere = meshes.add(Sphere::new(1.0).mesh().uv(12, 8));
    let cylinder = meshes.add(Cylinder::new(1.0, 1.0).mesh().resolution(10));
    let hidden = (Visibility::Hidden, layer.clone());
    for i in 0..POSE_LANDMARK_COUNT {
        commands.spawn((
            Joint3d::Body(i),
            Mesh3d(sphere.clone()),
            MeshMaterial3d(mats.body.clone()),
            Transform::default(),
            hidden.clone(),
        ));
    }
    for &(a, b) in &POSE_CONNECTIONS {
        commands.spawn((
            Bone3d::Body(a, b),
            Mesh3d(cylinder.clone()),
            MeshMaterial3d(mats.body.clone()),
            Transform::default(),
            hidden.clone(),
        ));
    }
    for slot in 0..2 {
        for index in 0..HAND_LANDMARK_COUNT {
            commands.spawn((
                Joint3d::Hand { slot, index },
                Mesh3d(sphere.clone()),
                MeshMaterial3d(mats.hand.clone()),
                Transform::default(),
                hidden.clone(),
            ));
        }
        for &(a, b) in &HAND_CONNECTIONS {
            commands.spawn((
                Bone3d::Hand { slot, a, b },
                Mesh3d(cylinder.clone()),
                MeshMaterial3d(mats.hand.clone()),
                Transform::default(),
                hidden.clone(),
            ));
        }
    }
    commands.insert_resource(mats);
}

/// MediaPipe world (x right, y down, z away from the camera) → Bevy (y up, camera looking down −z).
fn bevy_from_mediapipe(p: [f32; 3]) -> Vec3 {
    Vec3::new(p[0], -p[1], -p[2])
}

/// Joint positions for this frame: body, then up to two hands attached at the body's wrists.
struct Skeleton {
    body: Vec<(Vec3, f32)>,
    hands: [Option<Vec<Vec3>>; 2],
}

/// The landmarks to draw; with `hips` (the avatar's drawn hip joint), the body's origin is put there,
/// otherwise the lowest visible point stands on the floor.
fn skeleton(results: &Results, interpolation: bool, hips: Option<Vec3>) -> Option<Skeleton> {
    let (result, _) = result_to_draw(results, interpolation, std::time::Instant::now())?;
    let pose = result.pose.as_ref()?;
    let mut body: Vec<(Vec3, f32)> = pose
        .world_landmarks
        .iter()
        .map(|w| (bevy_from_mediapipe(w.pos_in_world), w.visibility))
        .collect();
    // Stand the avatar on the ground: lowest visible point at y = 0.
    let floor = body
        .iter()
        .filter(|(_, v)| *v >= VISIBLE)
        .map(|(p, _)| p.y)
        .fold(f32::INFINITY, f32::min);
    let lift = match hips {
        Some(hips) => hips,
        None if floor.is_finite() => Vec3::Y * -floor,
        None => Vec3::Y,
    };
    for (p, _) in &mut body {
        *p += lift;
    }
    let mut hands = [None, None];
    let wrists = wrists_for_hands(pose, &result.hands);
    for (slot, (hand, wrist)) in result.hands.iter().zip(wrists).take(2).enumerate() {
        let wrist = body[wrist].0;
        let points: Vec<Vec3> = hand
            .world_landmarks
            .iter()
            .map(|w| bevy_from_mediapipe(w.pos_in_world))
            .collect();
        let offset = wrist - points[0];
        hands[slot] = Some(points.into_iter().map(|p| p + offset).collect());
    }
    Some(Skeleton { body, hands })
}

/// The body wrist (`LEFT_WRIST` or `RIGHT_WRIST`) each hand attaches to: the nearer one in the image
/// (for two hands, the pairing with the smaller total distance). The handedness classifier is not used:
/// on borderline hands it is a coin toss (messi5's hand scores 0.50 in MediaPipe itself), and a hand on
/// the wrong arm is worse than no label.
fn wrists_for_hands(pose: &Pose, hands: &[Hand]) -> Vec<usize> {
    let distance = |hand: &Hand, wrist: usize| {
        let (a, b) = (
            hand.landmarks[0].pos_in_image,
            pose.landmarks[wrist].pos_in_image,
        );
        let d = (a[0] - b[0]).hypot(a[1] - b[1]);
        if d.is_finite() { d } else { f32::MAX }
    };
    match hands {
        [] => Vec::new(),
        [one] => vec![if distance(one, LEFT_WRIST) <= distance(one, RIGHT_WRIST) {
            LEFT_WRIST
        } else {
            RIGHT_WRIST
        }],
        [first, second, ..] => {
            let straight = distance(first, LEFT_WRIST) + distance(second, RIGHT_WRIST);
            let crossed = distance(first, RIGHT_WRIST) + distance(second, LEFT_WRIST);
            if straight <= crossed {
                vec![LEFT_WRIST, RIGHT_WRIST]
            } else {
                vec![RIGHT_WRIST, LEFT_WRIST]
            }
        }
    }
}

fn place_bone(transform: &mut Transform, a: Vec3, b: Vec3, radius: f32) -> bool {
    let along = b - a;
    let length = along.length();
    if !length.is_finite() || length < 1e-5 {
        return false;
    }
    transform.translation = (a + b) / 2.0;
    transform.rotation = Quat::from_rotation_arc(Vec3::Y, along / length);
    transform.scale = Vec3::new(radius, length, radius);
    true
}

fn update_landmarks(
    results: Res<Results>,
    settings: Res<AppSettings>,
    root: Res<AvatarRoot>,
    materials: Res<AvatarMaterials>,
    mut joints: Query<
        (
            &Joint3d,
            &mut Transform,
            &mut Visibility,
            &mut MeshMaterial3d<StandardMaterial>,
        ),
        Without<Bone3d>,
    >,
    mut bones: Query<
        (
            &Bone3d,
            &mut Transform,
            &mut Visibility,
            &mut MeshMaterial3d<StandardMaterial>,
        ),
        Without<Joint3d>,
    >,
    mut gizmos: Gizmos<View3dGizmos>,
) {
    gizmos.grid(
        Isometry3d::from_rotation(Quat::from_rotation_x(std::f32::consts::FRAC_PI_2)),
        UVec2::splat(20),
        Vec2::splat(0.25),
        Color::srgb(0.35, 0.35, 0.4),
    );
    let hips = root.0.filter(|_| settings.view3d.avatar);
    let skeleton = settings
        .view3d
        .landmarks
        .then(|| skeleton(&results, settings.blends(), hips))
        .flatten();
    for (joint, mut transform, mut visibility, mut material) in &mut joints {
        let placed = match (joint, &skeleton) {
            (Joint3d::Body(i), Some(s)) => s.body.get(*i).map(|&(p, v)| {
                let wanted = if v >= VISIBLE {
                    &materials.body
                } else {
                    &materials.body_faded
                };
                set_material(&mut material, wanted);
                (p, JOINT_RADIUS_M)
            }),
            (Joint3d::Hand { slot, index }, Some(s)) => s.hands[*slot]
                .as_ref()
                .and_then(|h| h.get(*index))
                .map(|&p| (p, HAND_JOINT_RADIUS_M)),
            _ => None,
        };
        match placed {
            Some((p, r)) if p.is_finite() => {
                *transform = Transform::from_translation(p).with_scale(Vec3::splat(r));
                visibility.set_if_neq(Visibility::Visible);
            }
            _ => {
                visibility.set_if_neq(Visibility::Hidden);
            }
        }
    }
    for (bone, mut transform, mut visibility, mut material) in &mut bones {
        let ends = match (bone, &skeleton) {
            (Bone3d::Body(a, b), Some(s)) => {
                let (pa, va) = s.body[*a];
                let (pb, vb) = s.body[*b];
                let wanted = if va.min(vb) >= VISIBLE {
                    &materials.body
                } else {
                    &materials.body_faded
                };
                set_material(&mut material, wanted);
                Some((pa, pb, BONE_RADIUS_M))
            }
            (Bone3d::Hand { slot, a, b }, Some(s)) => s.hands[*slot]
                .as_ref()
                .map(|h| (h[*a], h[*b], HAND_BONE_RADIUS_M)),
            _ => None,
        };
        let shown = ends.is_some_and(|(a, b, r)| place_bone(&mut transform, a, b, r));
        visibility.set_if_neq(if shown {
            Visibility::Visible
        } else {
            Visibility::Hidden
        });
    }
}

/// Keeps the 3D camera in its viewport and applies orbit (drag) and zoom (wheel) over the 3D view.
#[allow(
    clippy::too_many_arguments,
    reason = "input, layout and the followed avatar"
)]
fn update_camera(
    layout: Res<Layout>,
    window: Single<&Window, With<PrimaryWindow>>,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut orbit: ResMut<Orbit>,
    root: Res<AvatarRoot>,
    settings: Res<AppSettings>,
    camera: Single<&mut Transform, With<View3dCamera>>,
    mut target: ResMut<View3dTarget>,
    mut images: ResMut<Assets<Image>>,
    sprite: Single<(&mut Sprite, &mut Transform), SpriteOnly>,
) {
    let mut transform = camera.into_inner();
    // The texture: the view's physical size × VIEW3D_RESOLUTION; the sprite: the view's rectangle.
    let s = layout.scale_factor.max(0.1);
    let size = (layout.view3d_size * s * VIEW3D_RESOLUTION)
        .as_uvec2()
        .max(UVec2::ONE);
    let extent = bevy::render::render_resource::Extent3d {
        width: size.x,
        height: size.y,
        depth_or_array_layers: 1,
    };
    if images
        .get(&target.image)
        .is_some_and(|image| image.texture_descriptor.size != extent)
        && let Some(mut image) = images.get_mut(&target.image)
    {
        image.resize(extent);
        target.resized = true;
    }
    let (mut sprite, mut sprite_transform) = sprite.into_inner();
    let center = layout.world_from_window(layout.view3d_min + layout.view3d_size / 2.0);
    if sprite.custom_size != Some(layout.view3d_size) {
        sprite.custom_size = Some(layout.view3d_size);
    }
    sprite_transform.set_if_neq(Transform::from_translation(center.extend(0.0)));
    let over_view = window.cursor_position().is_some_and(|c| {
        c.x >= layout.view3d_min.x
            && c.x < layout.view3d_min.x + layout.view3d_size.x
            && c.y >= layout.view3d_min.y
            && c.y < layout.view3d_min.y + layout.view3d_size.y
    });
    if over_view {
        if buttons.pressed(MouseButton::Left) {
            orbit.yaw -= motion.delta.x * 0.01;
            orbit.pitch = (orbit.pitch + motion.delta.y * 0.01).clamp(-1.4, 1.4);
        }
        orbit.distance = (orbit.distance * (1.0 - scroll.delta.y * 0.1)).clamp(0.5, 12.0);
    }
    // Follow the avatar across the floor (its hips move with the person in the image).
    let followed = root
        .0
        .filter(|_| settings.view3d.avatar)
        .unwrap_or(Vec3::ZERO);
    let target_point = Vec3::new(followed.x, LOOK_AT_HEIGHT_M, followed.z);
    let offset = Vec3::new(
        orbit.yaw.sin() * orbit.pitch.cos(),
        orbit.pitch.sin(),
        orbit.yaw.cos() * orbit.pitch.cos(),
    ) * orbit.distance;
    transform.set_if_neq(
        Transform::from_translation(target_point + offset).looking_at(target_point, Vec3::Y),
    );
}

/// The 3D view's sprite, not its camera (both have a `Transform`).
type SpriteOnly = (With<View3dSprite>, Without<View3dCamera>);

/// Entities of the 3D view (the camera too) that moved, were shown or hidden, or changed material.
type ChangedInView = (
    With<RenderLayers>,
    Or<(
        Changed<GlobalTransform>,
        Changed<Visibility>,
        Changed<MeshMaterial3d<StandardMaterial>>,
    )>,
);

/// Renders the 3D view only when something in it moved, appeared or disappeared (change detection on
/// the view's entities and its camera, after transforms are propagated), or the texture was resized.
fn render_only_when_changed(
    changed: Query<(), ChangedInView>,
    mut camera: Single<&mut Camera, With<View3dCamera>>,
    mut target: ResMut<View3dTarget>,
) {
    let render = target.resized || !changed.is_empty();
    target.resized = false;
    target.updates += 1;
    target.renders += u64::from(render);
    if camera.is_active != render {
        camera.is_active = render;
    }
}

fn configure_gizmos(mut store: ResMut<GizmoConfigStore>) {
    let (config, _) = store.config_mut::<View3dGizmos>();
    config.render_layers = RenderLayers::layer(VIEW3D_LAYER);
    config.line.width = 1.0;
}

pub(super) fn plugin(app: &mut App) {
    app.init_gizmo_group::<View3dGizmos>()
        .init_resource::<Orbit>()
        .add_systems(Startup, (setup, configure_gizmos))
        .add_systems(
            Update,
            (update_landmarks, update_camera)
                .chain()
                .in_set(PresentSystems::View3d),
        )
        .add_systems(
            PostUpdate,
            render_only_when_changed.after(bevy::transform::TransformSystems::Propagate),
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::Handedness;
    use crate::vision::landmarks::{ImageLandmark, WorldLandmark};
    use crate::vision::roi::Roi;

    fn at(x: f32, y: f32) -> ImageLandmark {
        ImageLandmark {
            pos_in_image: [x, y],
            visibility: 1.0,
            presence: 1.0,
            ..Default::default()
        }
    }

    /// A body whose left wrist is at (300, 200) and right wrist at (100, 200).
    fn pose() -> Pose {
        let mut landmarks = vec![at(200.0, 100.0); POSE_LANDMARK_COUNT];
        landmarks[LEFT_WRIST] = at(300.0, 200.0);
        landmarks[RIGHT_WRIST] = at(100.0, 200.0);
        Pose {
            landmarks,
            world_landmarks: vec![WorldLandmark::default(); POSE_LANDMARK_COUNT],
            presence: 1.0,
            roi: Roi::full_image(400, 300),
        }
    }

    /// A hand whose wrist is at (x, y), labelled `label` (deliberately wrong in the test).
    fn hand(x: f32, y: f32, label: Handedness) -> Hand {
        Hand {
            landmarks: vec![at(x, y); HAND_LANDMARK_COUNT],
            world_landmarks: vec![WorldLandmark::default(); HAND_LANDMARK_COUNT],
            handedness_mediapipe: label.other(),
            handedness_score: 0.5,
            handedness: label,
            presence: 1.0,
            roi: Roi::full_image(400, 300),
        }
    }

    #[test]
    fn hands_attach_to_the_nearest_wrist_whatever_their_label() {
        let pose = pose();
        // One hand near the left wrist, labelled right: it still goes on the left arm.
        let left_hand = hand(305.0, 210.0, Handedness::Right);
        assert_eq!(
            wrists_for_hands(&pose, std::slice::from_ref(&left_hand)),
            vec![LEFT_WRIST]
        );
        // Two hands, both labelled the same: each on its own arm.
        let right_hand = hand(95.0, 195.0, Handedness::Right);
        assert_eq!(
            wrists_for_hands(&pose, &[right_hand.clone(), left_hand.clone()]),
            vec![RIGHT_WRIST, LEFT_WRIST]
        );
        assert_eq!(
            wrists_for_hands(&pose, &[left_hand, right_hand]),
            vec![LEFT_WRIST, RIGHT_WRIST]
        );
        // A hand with non-finite landmarks does not poison the choice.
        let lost = hand(f32::NAN, 0.0, Handedness::Left);
        assert_eq!(wrists_for_hands(&pose, &[lost]).len(), 1);
        assert!(wrists_for_hands(&pose, &[]).is_empty());
    }
}
