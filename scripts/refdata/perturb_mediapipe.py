#!/usr/bin/env python3
"""How far official MediaPipe's own video-mode output moves when its input changes by almost nothing.

    python perturb_mediapipe.py CLIP.mjpeg --out DIR [--frame 0] [--pixel X,Y] [--delta 1]
                                [--noise 0] [--seed 0]

Runs mp.solutions.pose then mp.solutions.hands in video mode (static_image_mode=False, the options of
make_refs.py, so the run on unchanged frames reproduces <stem>.video.ref.jsonl) on the clip's frames,
decoded like the references (cv2.imdecode, BGR->RGB), after changing them by one of:

  --pixel X,Y --delta D   one channel value (red) of one pixel of frame --frame, by D grey levels
                          (clipped to 0..255): the smallest change an image can have;
  --noise A               every value of every frame by a uniform integer in [-A, A] (seed --seed).

It writes DIR/<stem>.jsonl in the schema of the references, one line per frame, so
compare_refs.py scores it against the unchanged reference exactly as it scores livepose:

    python compare_refs.py DIR --kind videos --only <stem> --refs tests/fixtures

If MediaPipe's output on a one-level change of one pixel drifts from its own reference by as much as
livepose's does, the drift is a property of the tracking loop (a small difference anywhere, such as
ONNX Runtime's float rounding against TFLite's, grows frame after frame), not of a step livepose
does differently. Needs the venv of setup_mediapipe_venv.sh.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refdata_lib as lib  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("--out", required=True)
    ap.add_argument("--frame", type=int, default=0)
    ap.add_argument("--pixel", help="X,Y of the pixel to change")
    ap.add_argument("--delta", type=int, default=1)
    ap.add_argument("--noise", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import numpy as np

    mp = lib.mediapipe_module()
    frames = lib.read_mjpeg(a.clip)
    name = os.path.basename(a.clip)
    stem = name.rsplit(".", 1)[0]
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    pose = mp.solutions.pose.Pose(**lib.pose_options(1, static=False))
    hands = mp.solutions.hands.Hands(**lib.hands_options(static=False))
    changed = 0
    out_path = os.path.join(a.out, f"{stem}.jsonl")
    with open(out_path, "w") as out:
        for i, data in enumerate(frames):
            img = lib.decode_jpeg_rgb(data)
            if a.pixel and i == a.frame:
                x, y = (int(v) for v in a.pixel.split(","))
                before = int(img[y, x, 0])
                img[y, x, 0] = np.uint8(min(255, max(0, before + a.delta)))
                changed += int(img[y, x, 0]) != before
            if a.noise:
                noise = rng.integers(-a.noise, a.noise + 1, size=img.shape)
                img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
                changed += 1
            h, w = img.shape[:2]
            rec = {"file": name, "frame": i, "width": w, "height": h, "timestamp_us": (i + 1) * 33333}
            rec["pose"] = lib.pose_json(pose.process(img), w, h)
            rec["hands"] = lib.hands_json(hands.process(img), w, h)
            out.write(lib.dumps_compact(rec) + "\n")
    pose.close()
    hands.close()
    if (a.pixel or a.noise) and not changed:
        print("error: nothing was changed (pixel already at the clip bound?)", file=sys.stderr)
        return 1
    print(f"{out_path}: {len(frames)} frames; changed: {a.pixel or ''} {('noise ±%d' % a.noise) if a.noise else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
