#!/usr/bin/env python3
# Copied from the team's shared data set (shared/data/scripts/score_truth.py) on 2026-12-07.
"""Score outputs against truth made by make_people_media.py or truth_from_motion.py.

usage: score_truth.py TRUTH.truth.jsonl OUTPUT.jsonl [--fp]
OUTPUT lines: {"frame": k, "people": [{"id": N, "pose": {"landmarks": [{"x_px","y_px",...}]}}]}; a line
with only a top-level "pose" counts as one person with id 0. Matching per frame: greedy on the mean
distance over the truth's visible landmarks, gated at max(0.6 x torso, 25 px). Prints one JSON line:
recall (matched / visible person-frames), mean and p95 landmark error of matched people, ID switches
(changes of the output id matched to one truth person), and with --fp the unmatched output people.
"""
import json, math, sys

def people_of(row):
    if row is None:
        return []
    ps = row.get("people")
    if ps is None:
        p = row.get("pose")
        ps = [{"id": 0, "pose": p}] if p else []
    out = []
    for p in ps:
        pose = p.get("pose") if "pose" in p else p
        lms = (pose or {}).get("landmarks") or []
        if len(lms) < 33:
            continue
        out.append((p.get("id"), [(l["x_px"], l["y_px"]) for l in lms[:33]]))
    return out

def main():
    truth = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    rows = {}
    for i, l in enumerate(open(sys.argv[2])):
        if l.strip():
            r = json.loads(l); rows[r.get("frame", i)] = r
    count_fp = "--fp" in sys.argv
    visible = matched = fp = 0; errs = []; last_id = {}; switches = 0
    for t in truth:
        k = t["frame"]; outs = people_of(rows.get(k))
        cands = []
        tps = []
        for tp in t["people"]:
            pts = tp["landmarks"]; vis = [j for j, p in enumerate(pts) if p[2]]
            core = [j for j in (11, 12, 23, 24) if pts[j][2]]
            if len(vis) < 8 or not core:
                continue
            sh = [(pts[11][0] + pts[12][0]) / 2, (pts[11][1] + pts[12][1]) / 2]
            hp = [(pts[23][0] + pts[24][0]) / 2, (pts[23][1] + pts[24][1]) / 2]
            gate = max(0.6 * math.dist(sh, hp), 25.0)
            tps.append((tp["person"], pts, vis, gate))
            visible += 1
            for oi, (oid, opts) in enumerate(outs):
                d = sum(math.dist(opts[j], pts[j][:2]) for j in vis) / len(vis)
                if d <= gate:
                    cands.append((d, tp["person"], oi))
        cands.sort(); used_t = set(); used_o = set()
        for d, pid, oi in cands:
            if pid in used_t or oi in used_o:
                continue
            used_t.add(pid); used_o.add(oi); matched += 1
            pts = next(x for x in tps if x[0] == pid)
            errs.extend(math.dist(outs[oi][1][j], pts[1][j][:2]) for j in pts[2])
            oid = outs[oi][0]
            if pid in last_id and last_id[pid] != oid:
                switches += 1
            last_id[pid] = oid
        fp += len(outs) - len(used_o)
    errs.sort()
    res = {"output": sys.argv[2].split("/")[-1], "truth_person_frames": visible,
           "recall": round(matched / visible, 3) if visible else None,
           "mean_px": round(sum(errs) / len(errs), 2) if errs else None,
           "p95_px": round(errs[int(0.95 * (len(errs) - 1))], 2) if errs else None,
           "id_switches": switches}
    if count_fp:
        res["unmatched_outputs"] = fp
    print(json.dumps(res))

if __name__ == "__main__":
    main()
