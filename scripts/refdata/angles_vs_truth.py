#!/usr/bin/env python3
# Copied from the team's shared data set (shared/data/scripts/angles_vs_truth.py) on 2026-12-07.
"""Joint angles of a still person under camera motion, against the truth.

In a Ken Burns clip only the camera moves, so every 3D joint angle keeps the value it has in the photo.
For each frame whose output pose is the true person (2D gate as in score_truth.py), each joint angle
(from world landmarks, as livepose's README defines them; all three landmarks visible >= 0.5 in the
photo and in the output) is compared with the photo's static angle. Prints the mean, p95 and max
absolute error in degrees, and the mean per joint.
usage: angles_vs_truth.py TRUTH.truth.jsonl PHOTO.ref.json OUTPUT.jsonl [OUTPUT2.jsonl ...]
"""
import json, math, sys

JOINTS = {"left_elbow": (11, 13, 15), "right_elbow": (12, 14, 16), "left_shoulder": (23, 11, 13),
          "right_shoulder": (24, 12, 14), "left_hip": (11, 23, 25), "right_hip": (12, 24, 26),
          "left_knee": (23, 25, 27), "right_knee": (24, 26, 28), "left_ankle": (25, 27, 31),
          "right_ankle": (26, 28, 32)}

def angle(w, a, b, c):
    v1 = [w[a][i] - w[b][i] for i in range(3)]; v2 = [w[c][i] - w[b][i] for i in range(3)]
    n1 = math.sqrt(sum(x * x for x in v1)); n2 = math.sqrt(sum(x * x for x in v2))
    if n1 == 0 or n2 == 0:
        return None
    return math.degrees(math.acos(max(-1.0, min(1.0, sum(x * y for x, y in zip(v1, v2)) / (n1 * n2)))))

def world(pose):
    wl = (pose or {}).get("world_landmarks")
    return [(l["x_m"], l["y_m"], l["z_m"], l.get("visibility", 1.0)) for l in wl[:33]] if wl else None

def poses(row):
    ps = row.get("people")
    if ps is None:
        return [row["pose"]] if row.get("pose") else []
    return [p.get("pose") for p in ps if p.get("pose")]

def main():
    truth = {t["frame"]: t["people"][0]["landmarks"] for t in map(json.loads, open(sys.argv[1])) if t["people"]}
    pw = world(json.load(open(sys.argv[2]))["pose"])
    ref = {k: angle(pw, *v) for k, v in JOINTS.items() if min(pw[i][3] for i in v) >= 0.5}
    for path in sys.argv[3:]:
        errs = {k: [] for k in ref}
        for i, line in enumerate(open(path)):
            row = json.loads(line); k = row.get("frame", i); t = truth.get(k)
            if not t:
                continue
            vis = [j for j, p in enumerate(t) if p[2]]
            core = [j for j in (11, 12, 23, 24) if t[j][2]]
            if len(vis) < 8 or not core:
                continue
            sh = [(t[11][0] + t[12][0]) / 2, (t[11][1] + t[12][1]) / 2]
            hp = [(t[23][0] + t[24][0]) / 2, (t[23][1] + t[24][1]) / 2]
            gate = max(0.6 * math.dist(sh, hp), 25.0)
            best = None
            for p in poses(row):
                lms = p.get("landmarks") or []
                if len(lms) < 33:
                    continue
                d = sum(math.dist((lms[j]["x_px"], lms[j]["y_px"]), t[j][:2]) for j in vis) / len(vis)
                if d <= gate and (best is None or d < best[0]):
                    best = (d, p)
            w = world(best[1]) if best else None
            if not w:
                continue
            for name, (a, b, c) in JOINTS.items():
                if name in ref and min(w[a][3], w[b][3], w[c][3]) >= 0.5:
                    v = angle(w, a, b, c)
                    if v is not None:
                        errs[name].append(abs(v - ref[name]))
        allv = sorted(x for v in errs.values() for x in v)
        if not allv:
            print(json.dumps({"output": path.split("/")[-1], "angles": 0})); continue
        print(json.dumps({"output": path.split("/")[-1], "angles": len(allv), "mean_deg": round(sum(allv) / len(allv), 1),
                          "p95_deg": round(allv[int(0.95 * (len(allv) - 1))], 1), "max_deg": round(allv[-1], 1),
                          "per_joint_mean_deg": {k: round(sum(v) / len(v), 1) for k, v in errs.items() if v}}))

if __name__ == "__main__":
    main()
