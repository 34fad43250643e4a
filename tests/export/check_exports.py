"""Reads livepose's CSV and TRC exports with independent readers and checks them against the JSONL
results of the same run (`livepose analyze CLIP --out DIR --csv --trc`).

- pandas.read_csv with no options: every column named, numeric columns numeric, one row per JSONL line,
  empty cells (NaN) exactly where the JSONL has no pose / no hand / no angle, and every value equal to
  the JSONL's (which rounds px to 1e-4 and the rest to 1e-6: tolerance 2e-4 px, 2e-6 m, 1e-4 degrees).
- trc.TRCData().load (trc-data-reader): header keys, 33 markers named as MediaPipe's landmarks, one
  frame per line, each marker equal to the world landmark in mm with y and z negated (tolerance 0.002 mm:
  the JSONL's 1e-6 m rounding and the TRC's 1e-3 mm).

Usage: check_exports.py DIR STEM. Prints a summary line; exits non-zero with the first failure.
"""
import json
import math
import sys

import pandas as pd
from trc import TRCData

out_dir, stem = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(f"{out_dir}/{stem}.jsonl") if l.strip()]
landmarks = pd.read_csv(f"{out_dir}/{stem}.landmarks.csv")
angles = pd.read_csv(f"{out_dir}/{stem}.angles.csv")

POSE = [
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
]
HAND = [
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_finger_mcp", "index_finger_pip",
    "index_finger_dip", "index_finger_tip", "middle_finger_mcp", "middle_finger_pip",
    "middle_finger_dip", "middle_finger_tip", "ring_finger_mcp", "ring_finger_pip", "ring_finger_dip",
    "ring_finger_tip", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
]


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def close(a, b, tol, what):
    if not (math.isfinite(a) and abs(a - b) <= tol):
        fail(f"{what}: CSV {a} vs JSONL {b}")


if len(landmarks) != len(lines) or len(angles) != len(lines):
    fail(f"{len(landmarks)} landmark rows, {len(angles)} angle rows, {len(lines)} JSONL lines")
for table, name in [(landmarks, "landmarks"), (angles, "angles")]:
    non_numeric = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        fail(f"{name}.csv: non-numeric columns {non_numeric[:5]}")
if len(landmarks.columns) != 3 + 33 * 7 + 2 * (1 + 21 * 6):
    fail(f"landmarks.csv has {len(landmarks.columns)} columns")

values = 0
with_pose = 0
hands_seen = 0
for i, line in enumerate(lines):
    row = landmarks.iloc[i]
    pose = line.get("pose")
    if int(row["pose_present"]) != (1 if pose else 0):
        fail(f"frame {i}: pose_present {row['pose_present']} but JSONL pose {bool(pose)}")
    if pose:
        with_pose += 1
        for k, name in enumerate(POSE):
            l, w = pose["landmarks"][k], pose["world_landmarks"][k]
            for col, ref, tol in [("x_px", l["x_px"], 2e-4), ("y_px", l["y_px"], 2e-4),
                                  ("z", l["z"], 2e-6), ("visibility", l["visibility"], 2e-6),
                                  ("x_m", w["x_m"], 2e-6), ("y_m", w["y_m"], 2e-6),
                                  ("z_m", w["z_m"], 2e-6)]:
                close(float(row[f"{name}_{col}"]), ref, tol, f"frame {i} {name}_{col}")
                values += 1
    elif not all(math.isnan(row[f"{n}_x_px"]) for n in POSE):
        fail(f"frame {i}: no pose but landmark cells are filled")
    for side in ["left", "right"]:
        hand = next((h for h in line.get("hands", []) if h["person_hand"].lower() == side), None)
        if int(row[f"{side}_hand_present"]) != (1 if hand else 0):
            fail(f"frame {i}: {side}_hand_present {row[f'{side}_hand_present']}, JSONL {bool(hand)}")
        if hand:
            hands_seen += 1
            for k, name in enumerate(HAND):
                l, w = hand["landmarks"][k], hand["world_landmarks"][k]
                for col, ref, tol in [("x_px", l["x_px"], 2e-4), ("y_px", l["y_px"], 2e-4),
                                      ("x_m", w["x_m"], 2e-6), ("z_m", w["z_m"], 2e-6)]:
                    close(float(row[f"{side}_hand_{name}_{col}"]), ref, tol, f"frame {i} {side} {name}_{col}")
                    values += 1
        elif not math.isnan(row[f"{side}_hand_wrist_x_px"]):
            fail(f"frame {i}: no {side} hand but its cells are filled")
    arow = angles.iloc[i]
    for joint, a in line.get("angles", {}).items():
        close(float(arow[f"{joint}_deg"]), math.degrees(a["radians"]), 1e-4, f"frame {i} {joint}_deg")
        close(float(arow[f"{joint}_confidence"]), a["confidence"], 2e-6, f"frame {i} {joint}_confidence")
        values += 2
    for joint in [c[:-4] for c in angles.columns if c.endswith("_deg")]:
        if joint not in line.get("angles", {}) and not math.isnan(arow[f"{joint}_deg"]):
            fail(f"frame {i}: {joint} has no angle in the JSONL but the CSV has {arow[f'{joint}_deg']}")
times = landmarks["time_s"].to_numpy()
if not (times[0] == 0 and all(b > a for a, b in zip(times, times[1:]))):
    fail("time_s does not start at 0 and increase")

trc = TRCData()
trc.load(f"{out_dir}/{stem}.trc")
if trc["NumFrames"] != len(lines) or trc["NumMarkers"] != 33 or trc["Units"] != "mm":
    fail(f"TRC header: {trc['NumFrames']} frames, {trc['NumMarkers']} markers, units {trc['Units']}")
if trc["Markers"] != POSE:
    fail(f"TRC markers: {trc['Markers'][:5]}…")
if abs(trc["DataRate"] - 30.0) > 0.01:
    fail(f"TRC DataRate {trc['DataRate']}")
if len(trc["Frame#"]) != len(lines):
    fail(f"TRC has {len(trc['Frame#'])} data lines")
largest_mm = 0.0
for i, line in enumerate(lines):
    pose = line.get("pose")
    frame_time, markers = trc[i + 1]
    if abs(frame_time - times[i]) > 1e-6:
        fail(f"TRC frame {i + 1} time {frame_time} vs CSV {times[i]}")
    for k, name in enumerate(POSE):
        xyz = markers[k]
        if not pose:
            if not all(math.isnan(v) for v in xyz):
                fail(f"TRC frame {i + 1} {name}: {xyz} without a pose")
            continue
        w = pose["world_landmarks"][k]
        want = [w["x_m"] * 1000, -w["y_m"] * 1000, -w["z_m"] * 1000]
        for got, ref in zip(xyz, want):
            largest_mm = max(largest_mm, abs(got - ref))
            if abs(got - ref) > 0.002:
                fail(f"TRC frame {i + 1} {name}: {xyz} vs {want} mm")

print(f"ok: {len(lines)} frames ({with_pose} with a pose, {hands_seen} hands), {values} CSV values "
      f"equal to the JSONL, TRC {trc['NumFrames']} frames × 33 markers, largest TRC difference "
      f"{largest_mm:.4f} mm")
