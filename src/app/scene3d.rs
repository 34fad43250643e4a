//! What the avatar and the 3D view share: the render layer of the 3D view, the material swap, and the
//! avatar's drawn root (which the landmarks view stands on and the orbit camera follows). The avatar
//! writes the root in [`crate::app::PresentSystems::Avatar`]; the 3D view reads it in
//! [`crate::app::PresentSystems::View3d`], which runs after.

use bevy::prelude::*;

/// The 3D view's render layer (the 2D overlay stays on layer 0).
pub(crate) const VIEW3D_LAYER: usize = 1;

/// The drawn hip joint in the 3D view (skeleton space, metres), `None` with nothing to draw.
#[derive(Resource, Default, Clone, Copy)]
pub struct AvatarRoot(pub Option<Vec3>);

/// Swaps a material only when it differs (an unchanged handle must not be re-extracted every frame).
pub(crate) fn set_material(
    material: &mut Mut<MeshMaterial3d<StandardMaterial>>,
    wanted: &Handle<StandardMaterial>,
) {
    if material.0.id() != wanted.id() {
        material.0 = wanted.clone();
    }
}
