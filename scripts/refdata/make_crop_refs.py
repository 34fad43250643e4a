#!/usr/bin/env python3
"""Reference crops for tests/it/crop_opencv.rs, made the way MediaPipe's CPU ImageToTensorCalculator makes a
model's input (image_to_tensor_converter_opencv.cc, image_to_tensor_utils.cc PadRoi):

  - PadRoi: grow the ROI to the tensor's aspect ratio (float32 arithmetic) when keep_aspect_ratio;
  - cv::RotatedRect(centre, size, rotation in degrees) -> cv::boxPoints (bottom-left, top-left, top-right,
    bottom-right) mapped onto the tensor corners (0,H), (0,0), (W,0), (W,H) with getPerspectiveTransform;
  - cv2.warpPerspective(..., INTER_LINEAR, BORDER_REPLICATE or BORDER_CONSTANT 0) into an 8-bit W x H image.

Images are read with cv2.imread (libjpeg-turbo for JPEG) and converted BGR -> RGB (grey -> RGB), as the
MediaPipe Python API receives them. Writes tests/fixtures/crops/<name>.png (RGB) and SHA256SUMS.

Run with the pinned OpenCV of the MediaPipe references:
  python3 -m venv /tmp/cv && /tmp/cv/bin/pip install opencv-contrib-python==4.11.0.86 numpy==1.26.4
  /tmp/cv/bin/python scripts/refdata/make_crop_refs.py
"""
import hashlib
import json
import math
import pathlib
import sys

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "crops"


def pad_roi(center, size, width, height, keep):
    w, h = np.float32(size[0]), np.float32(size[1])
    if not keep:
        return w, h
    tensor_aspect = np.float32(height) / np.float32(width)
    roi_aspect = h / w
    if tensor_aspect > roi_aspect:
        return w, w * tensor_aspect
    return h / tensor_aspect, h


def crop(image, case):
    w, h = pad_roi(case["center"], case["size"], case["width"], case["height"], case["keep_aspect_ratio"])
    rotation = np.float32(case["rotation"])
    angle = np.float32(rotation * np.float32(180.0) / np.float32(math.pi))
    rect = ((float(np.float32(case["center"][0])), float(np.float32(case["center"][1]))), (float(w), float(h)), float(angle))
    src = cv2.boxPoints(rect).astype(np.float32)
    dw, dh = case["width"], case["height"]
    dst = np.array([[0, dh], [0, 0], [dw, 0], [dw, dh]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    border = cv2.BORDER_REPLICATE if case["border"] == "replicate" else cv2.BORDER_CONSTANT
    return cv2.warpPerspective(image, matrix, (dw, dh), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)


def main():
    cases = json.loads((OUT / "cases.json").read_text())["cases"]
    sums = []
    for case in cases:
        bgr = cv2.imread(str(FIXTURES / case["image"]), cv2.IMREAD_COLOR)
        if bgr is None:
            sys.exit(f"cannot read {case['image']}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out = crop(rgb, case)
        path = OUT / f"{case['name']}.png"
        cv2.imwrite(str(path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
        print(f"{path.name}: {out.shape[1]}x{out.shape[0]}")
    (OUT / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print(f"opencv {cv2.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
