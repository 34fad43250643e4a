#!/usr/bin/env python3
# Copied from the team's shared data set (shared/data/scripts/truth_from_motion.py) on 2026-12-07.
"""Truth JSONL (score_truth.py's format) for a single-person Ken Burns clip: the photo's static MediaPipe
reference through each frame's affine. usage: truth_from_motion.py CLIP.motion.json PHOTO.ref.json OUT.truth.jsonl"""
import json, sys
motion = json.load(open(sys.argv[1])); photo = json.load(open(sys.argv[2]))
W, H = motion["frame_size"]
src = [(l["x_px"], l["y_px"], l["visibility"]) for l in photo["pose"]["landmarks"][:33]]
with open(sys.argv[3], "w") as f:
    for fr in motion["frames"]:
        M = fr["M_src_to_frame"]; pts = []
        for x, y, v in src:
            fx = M[0][0] * x + M[0][1] * y + M[0][2]; fy = M[1][0] * x + M[1][1] * y + M[1][2]
            pts.append([round(fx, 3), round(fy, 3), v >= 0.5 and 0 <= fx < W and 0 <= fy < H])
        f.write(json.dumps({"frame": fr["frame"], "people": [{"person": 0, "landmarks": pts}]}) + "\n")
