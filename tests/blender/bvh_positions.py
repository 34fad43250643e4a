# Imports a BVH file with Blender's own importer and prints, as JSON, what Blender made of it: the bone
# names, the frames it keyed, the scene's frame range and rate, and the world position (Blender units) of every bone's head at the
# frames asked for. Run by tests/blender_bvh.rs:
#   blender -b --factory-startup --python tests/blender/bvh_positions.py -- IN.bvh OUT.json 1 31 61
# Frame k of the file's MOTION is Blender frame k + 1 (frame_start=1).
import builtins
import json
import sys

import bpy

# Blender 3.4's importer opens the file with mode "rU", which Python 3.11 no longer accepts (Debian's
# blender runs on the system's Python 3.11). "r" is what "rU" meant.
_open = builtins.open


def _open_without_u(file, mode="r", *args, **kwargs):
    return _open(file, mode.replace("U", ""), *args, **kwargs)


builtins.open = _open_without_u

argv = sys.argv[sys.argv.index("--") + 1 :]
bvh_path, out_path, frames = argv[0], argv[1], [int(f) for f in argv[2:]]

for obj in list(bpy.data.objects):
    bpy.data.objects.remove(obj, do_unlink=True)
bpy.ops.import_anim.bvh(
    filepath=bvh_path,
    global_scale=1.0,
    frame_start=1,
    use_fps_scale=False,
    update_scene_fps=True,
    update_scene_duration=True,
    axis_forward="-Z",
    axis_up="Y",
)
builtins.open = _open
armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
scene = bpy.context.scene
action = armature.animation_data.action
# Frames as Blender keyed them: the keyframes on the root's first channel.
keys = [k.co[0] for k in action.fcurves[0].keyframe_points]
positions = {}
for frame in frames:
    scene.frame_set(frame)
    positions[str(frame)] = {
        pb.name: list(armature.matrix_world @ pb.head) for pb in armature.pose.bones
    }
with open(out_path, "w") as out:
    json.dump(
        {
            "bones": [b.name for b in armature.data.bones],
            "frame_start": scene.frame_start,
            "frame_end": scene.frame_end,
            "action_range": list(action.frame_range),
            "keyframes": len(keys),
            "fps": scene.render.fps / scene.render.fps_base,
            "positions": positions,
        },
        out,
    )
