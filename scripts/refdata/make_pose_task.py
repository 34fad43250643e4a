#!/usr/bin/env python3
# Copied from the team's shared data set (shared/data/scripts/make_pose_task.py) on 2026-12-07.
"""Build MediaPipe's PoseLandmarker model bundle (.task) offline from the models in the mediapipe 0.10.21
wheel, so the Tasks API (num_poses > 1: MediaPipe's own multi-person mode) runs with no download.

A .task is an uncompressed zip of pose_detector.tflite and pose_landmarks_detector.tflite. The wheel's
detector already carries its input normalisation metadata; its landmark model has none, so it gets
mean 0 / std 255 (the [0, 1] input range of the legacy graph) with the wheel's own MetadataWriter. The
weights are unchanged. Zip entries carry a fixed date, so the file's SHA-256 is the same every time.
Lite and heavy landmark models can be given from the @mediapipe/pose npm package (see
setup_mediapipe_venv.sh); the wheel has full only.
usage: python make_pose_task.py OUT.task [LANDMARK_TFLITE]
"""
import os, sys, zipfile, hashlib
import mediapipe
from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

mods = os.path.join(os.path.dirname(mediapipe.__file__), "modules")
out = sys.argv[1]
lm_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(mods, "pose_landmark", "pose_landmark_full.tflite")
det = open(os.path.join(mods, "pose_detection", "pose_detection.tflite"), "rb").read()
w = metadata_writer.MetadataWriter.create(open(lm_path, "rb").read())
w.add_image_input([0.0], [255.0])
for _ in range(5):  # landmarks, presence, segmentation, heatmap, world landmarks
    w.add_feature_output()
lm, _ = w.populate()
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
    for name, data in (("pose_detector.tflite", det), ("pose_landmarks_detector.tflite", lm)):
        z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
print(out, hashlib.sha256(open(out, "rb").read()).hexdigest())
