#!/usr/bin/env python3
"""Cut a people clip and its truth to every Nth frame, as the app sees a clip when it tracks one frame
in N (docs/MEASUREMENTS.md, "Several people").

usage: every_nth.py N CLIP.mjpeg CLIP.truth.jsonl OUT_DIR
Writes OUT_DIR/<stem>.mjpeg (frames 0, N, 2N, ...) and OUT_DIR/<stem>.truth.jsonl (those frames'
truth, renumbered 0, 1, 2, ...). Analyse the cut clip at --fps 30/N and score it with score_truth.py.
"""
import json
import os
import sys


def jpeg_frames(data):
    """The JPEG images of an .mjpeg file (each from its SOI marker to the next image's)."""
    starts = []
    at = data.find(b"\xff\xd8\xff")
    while at >= 0:
        starts.append(at)
        at = data.find(b"\xff\xd8\xff", at + 3)
    return [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    n, clip, truth, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    os.makedirs(out, exist_ok=True)
    stem = os.path.basename(clip).removesuffix(".mjpeg")
    with open(clip, "rb") as f:
        frames = jpeg_frames(f.read())
    with open(os.path.join(out, stem + ".mjpeg"), "wb") as f:
        f.write(b"".join(frames[::n]))
    with open(truth) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    with open(os.path.join(out, stem + ".truth.jsonl"), "w") as f:
        for k, line in enumerate(lines[::n]):
            line["frame"] = k
            f.write(json.dumps(line) + "\n")
    print(f"{stem}: {len(frames)} frames -> {len(frames[::n])}")


if __name__ == "__main__":
    main()
