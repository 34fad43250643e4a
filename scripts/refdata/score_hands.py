#!/usr/bin/env python3
"""Hands scored against the body truth (written for livepose on 2026-12-07; standard library only).

usage: score_hands.py TRUTH.truth.jsonl OUTPUT.jsonl [PHOTO.ref.json CLIP.motion.json]

The truth files (make_people_media.py, truth_from_motion.py) give every person's 33 body landmarks and
which are visible, not their hands' 21. So a hand is scored at the wrist:
- wrist recall: the visible true wrists (body landmarks 15 and 16) that have an output hand whose wrist
  (hand landmark 0) lies within 0.35 of that person's torso (shoulder centre to hip centre); `wrist_px`
  is the mean distance of those hands' wrists to the true wrist (the two models do not put the wrist at
  the same point, so this is not the hand's error);
- attribution: each output person is matched to the truth person whose visible landmarks it is nearest
  (mean distance under half a torso); a hand of that output person whose nearest true wrist (within
  half a torso) is that truth person's counts as `attributed_ok`, another person's as
  `attributed_wrong`; a hand near no true wrist is `stray` (a person the truth leaves out, or a miss);
- with a Ken Burns clip's photo reference and motion: the photo's MediaPipe hands (static, 21 landmarks)
  through each frame's affine are true hands too (only the camera moves): `hand_truth_recall` (found
  within 0.35 torso at the wrist) and `hand_truth_mean_px` (mean error over the 21 landmarks);
- cost: `hand_ms_per_frame`, the mean per frame of the result's hand stage timings (palm detection and
  hand landmarks: crop, inference, decoding).
An OUTPUT line without `people` (MediaPipe's reference files) is one person: its top-level pose and hands.
Prints one JSON line.
"""
import json
import math
import sys

WRIST_GATE_TORSOS = 0.35
OWNER_GATE_TORSOS = 0.5
BODY_WRISTS = (15, 16)


def dist(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def mean(values):
    return round(sum(values) / len(values), 2) if values else None


def torso(landmarks):
    shoulders = ((landmarks[11][0] + landmarks[12][0]) / 2, (landmarks[11][1] + landmarks[12][1]) / 2)
    hips = ((landmarks[23][0] + landmarks[24][0]) / 2, (landmarks[23][1] + landmarks[24][1]) / 2)
    return dist(shoulders, hips)


def photo_hands_by_frame(ref_path, motion_path):
    ref = json.load(open(ref_path))
    motion = json.load(open(motion_path))
    out = {}
    for frame in motion["frames"]:
        m = frame["M_src_to_frame"]
        out[frame["frame"]] = [
            [(m[0][0] * p["x_px"] + m[0][1] * p["y_px"] + m[0][2],
              m[1][0] * p["x_px"] + m[1][1] * p["y_px"] + m[1][2]) for p in hand["landmarks"]]
            for hand in ref["hands"]
        ]
    return out


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    truth = {row["frame"]: row for row in map(json.loads, open(sys.argv[1]))}
    outputs = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
    true_hands = photo_hands_by_frame(sys.argv[3], sys.argv[4]) if len(sys.argv) == 5 else {}
    wrists = found = ok = wrong = stray = hands_out = 0
    wrist_px, hand_ms = [], []
    truth_hands = truth_found = 0
    truth_px = []
    for row in outputs:
        t = truth.get(row.get("frame"))
        if t is None:
            continue
        timings = row.get("timings_ms") or {}
        hand_ms.append(sum(v for k, v in timings.items()
                           if ("hand" in k or "palm" in k) and isinstance(v, (int, float))))
        people = row.get("people")
        if people is None:
            people = [{"pose": row["pose"], "hands": row.get("hands") or []}] if row.get("pose") else []
        persons = [(p["person"], p["landmarks"], torso(p["landmarks"])) for p in t["people"]]
        hands = []  # (wrist, output person index, 21 points)
        for i, person in enumerate(people):
            for hand in person.get("hands") or []:
                points = [(q["x_px"], q["y_px"]) for q in hand["landmarks"]]
                hands.append((points[0], i, points))
        hands_out += len(hands)
        for _, landmarks, size in persons:
            for w in BODY_WRISTS:
                if not landmarks[w][2]:
                    continue
                wrists += 1
                nearest = min((dist(h[0], landmarks[w]) for h in hands), default=math.inf)
                if nearest <= WRIST_GATE_TORSOS * size:
                    found += 1
                    wrist_px.append(nearest)
        matched = {}
        for i, person in enumerate(people):
            pose = person["pose"]["landmarks"]
            best = None
            for pid, landmarks, size in persons:
                ds = [dist((pose[k]["x_px"], pose[k]["y_px"]), landmarks[k])
                      for k in range(33) if landmarks[k][2]]
                if ds and sum(ds) / len(ds) < OWNER_GATE_TORSOS * size and (
                        best is None or sum(ds) / len(ds) < best[0]):
                    best = (sum(ds) / len(ds), pid)
            if best:
                matched[i] = best[1]
        for wrist, i, _ in hands:
            candidates = [(dist(wrist, landmarks[w]), pid, size)
                          for pid, landmarks, size in persons for w in BODY_WRISTS]
            if not candidates:
                continue
            d, pid, size = min(candidates)
            if d > OWNER_GATE_TORSOS * size:
                stray += 1
            elif i in matched:
                ok += matched[i] == pid
                wrong += matched[i] != pid
        size = persons[0][2] if persons else 0.0
        for true_hand in true_hands.get(row.get("frame"), []):
            truth_hands += 1
            near = [h for h in hands if dist(h[0], true_hand[0]) <= WRIST_GATE_TORSOS * size]
            if near:
                best = min(near, key=lambda h: dist(h[0], true_hand[0]))
                truth_found += 1
                truth_px.append(sum(dist(a, b) for a, b in zip(best[2], true_hand)) / len(true_hand))
    result = {
        "frames": len(outputs), "wrists": wrists, "wrist_recall": round(found / max(wrists, 1), 3),
        "wrist_px": mean(wrist_px), "hands_out": hands_out, "attributed_ok": ok,
        "attributed_wrong": wrong, "stray": stray, "hand_ms_per_frame": mean(hand_ms),
    }
    if true_hands:
        result["hand_truth_recall"] = round(truth_found / max(truth_hands, 1), 3)
        result["hand_truth_mean_px"] = mean(truth_px)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
