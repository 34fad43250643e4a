//! Where the detector looks besides the whole frame. MediaPipe's pose detector sees its region at
//! 224 px and finds people by their faces, so a person small in a 960×540 frame (the basketball man at
//! scale 1.15, a face of ~7 px at the detector's input) is found in a square tile of the frame, where
//! they are 1.8× larger, and not in the whole frame. While someone is missing, every detection looks at
//! the whole frame and at one tile; the tile's finds are added where the whole frame found nobody
//! (docs/MEASUREMENTS.md, "The whole frame and a tile at every detection").

use crate::vision::people::{BodyInImage, Candidate, MATCH_TORSOS};
use crate::vision::roi::Roi;

/// A tile's find within this many torso lengths of a tracked person is not added: near someone
/// tracked, a body the whole frame did not show is most often a partial view of them (a half-hidden
/// person's detection at a tile's edge started second tracks on one body in `e_hide3`).
pub const TILE_CLEAR_TORSOS: f32 = 1.0;

/// Squares as high as a landscape frame (as wide as a portrait one), from one end of its long side to
/// the other, at most half a square apart, so that anyone up to half a square wide is wholly inside
/// one (a 16:9 frame has three, a 4:3 frame two). A square frame has none.
pub fn detection_tiles(width: u32, height: u32) -> Vec<Roi> {
    let (w, h) = (width as f32, height as f32);
    let (long, short) = (w.max(h), w.min(h));
    if !(short > 0.0 && long > short) {
        return Vec::new();
    }
    let count = ((long - short) / (0.5 * short)).ceil() as usize + 1;
    (0..count)
        .map(|i| {
            let along = short * 0.5 + (long - short) * i as f32 / (count - 1) as f32;
            Roi {
                center_in_image: if w >= h {
                    [along, h * 0.5]
                } else {
                    [w * 0.5, along]
                },
                size_in_image: [short, short],
                rotation: 0.0,
            }
        })
        .collect()
}

/// The tile to look at this time: the one holding the fewest of the `tracked` bodies (where someone
/// missing more likely is), taking turns from `turn` between equal ones.
pub fn pick_tile(tiles: &[Roi], turn: usize, tracked: &[BodyInImage]) -> usize {
    let tracked_in = |t: &Roi| {
        tracked
            .iter()
            .filter(|b| t.contains(b.centre_in_image()))
            .count()
    };
    (0..tiles.len())
        .map(|k| (turn + k) % tiles.len())
        .min_by_key(|&i| tracked_in(&tiles[i]))
        .unwrap_or(0)
}

/// The whole frame's candidates (best score first), then those of a tile that are on nobody the whole
/// frame found (within [`MATCH_TORSOS`] of one of its candidates) and near nobody tracked
/// ([`TILE_CLEAR_TORSOS`] of their predicted bodies): association matches by distance, so the order
/// only decides who of two new people gets the lower id.
pub fn add_tile_candidates(
    whole: &mut Vec<Candidate>,
    tile: Vec<Candidate>,
    tracked: &[BodyInImage],
) {
    for c in tile {
        let found = whole
            .iter()
            .any(|w| w.body.distance_in_torsos(&c.body) < MATCH_TORSOS);
        let near_tracked = tracked
            .iter()
            .any(|b| b.distance_in_torsos(&c.body) < TILE_CLEAR_TORSOS);
        if !found && !near_tracked {
            whole.push(c);
        }
    }
}
