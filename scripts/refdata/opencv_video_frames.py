#!/usr/bin/env python3
"""The frames MediaPipe users feed from a video file: cv2.VideoCapture(path).read() (OpenCV's FFmpeg
backend: FFmpeg decodes, swscale converts to BGR24 with SWS_BICUBIC), then cv2.cvtColor(BGR2RGB), as
make_video_refs.py does. Writes one line per frame: index, width, height, SHA-256 of the packed RGB
bytes; with --raw DIR also each frame's RGB bytes as DIR/NNNNN.rgb (for measuring a difference).

    python opencv_video_frames.py VIDEO OUT.sha256 [--raw DIR]

Made tests/fixtures/carphone_pristine.opencv_rgb.sha256 with opencv-contrib-python 4.11.0.86 (PyPI), the
OpenCV of the MediaPipe references.
"""
import argparse, hashlib, os, sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video"); ap.add_argument("out"); ap.add_argument("--raw")
    a = ap.parse_args()
    import cv2
    cap = cv2.VideoCapture(a.video)
    if a.raw:
        os.makedirs(a.raw, exist_ok=True)
    lines = [f"# cv2.VideoCapture({os.path.basename(a.video)}).read() + BGR2RGB; opencv {cv2.__version__}, "
             f"backend {cap.getBackendName()}: frame width height sha256(rgb)"]
    i = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        data = rgb.tobytes()
        lines.append(f"{i} {w} {h} {hashlib.sha256(data).hexdigest()}")
        if a.raw:
            with open(os.path.join(a.raw, f"{i:05d}.rgb"), "wb") as f:
                f.write(data)
        i += 1
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{a.video}: {i} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
