#!/usr/bin/env python3
# Copied from the team's shared data set (shared/data/scripts/mediapipe_tasks_refs.py) on 2026-12-07.
"""The anchor: official MediaPipe 0.10.21 Tasks PoseLandmarker (VIDEO mode, num_poses) over an MJPEG clip,
written in the scorer's format (id = MediaPipe's list position; it has no IDs). Also times it.
usage: mediapipe_tasks_refs.py CLIP.mjpeg OUT.jsonl NUM_POSES TASK_FILE  (TASK_FILE from make_pose_task.py)
"""
import json, sys, time
import cv2, numpy as np, mediapipe as mp
from mediapipe.tasks.python import vision, BaseOptions
clip, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
task = sys.argv[4]
data = open(clip, "rb").read(); frames = []; i = 0
while True:
    s = data.find(b"\xff\xd8", i)
    if s < 0: break
    e = data.find(b"\xff\xd9", s); frames.append(cv2.cvtColor(cv2.imdecode(np.frombuffer(data[s:e + 2], np.uint8), 1), cv2.COLOR_BGR2RGB)); i = e + 2
lm = vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
    base_options=BaseOptions(model_asset_path=task), running_mode=vision.RunningMode.VIDEO, num_poses=n))
spent = 0.0
with open(out, "w") as f:
    for k, img in enumerate(frames):
        h, w = img.shape[:2]
        t0 = time.perf_counter()
        r = lm.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(img)), (k + 1) * 33333 // 1000)
        spent += time.perf_counter() - t0
        people = [{"id": j, "pose": {"landmarks": [{"x_px": l.x * w, "y_px": l.y * h, "visibility": l.visibility} for l in p]}}
                  for j, p in enumerate(r.pose_landmarks)]
        f.write(json.dumps({"frame": k, "people": people}) + "\n")
print(json.dumps({"clip": clip.split("/")[-1], "num_poses": n, "frames": len(frames), "fps": round(len(frames) / spent, 1)}))
