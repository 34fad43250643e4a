#!/usr/bin/env python3
"""Score an ensemble of `livepose analyze` runs against the truth, per clip and pooled by set, with
MediaPipe beside (Tasks num_poses 3 on the multi-person clips, legacy video mode on the Ken Burns ones).

usage: score_people_set.py RUNS_DIR MULTIPERSON_DIR EVAL_SET_DIR FIXTURES_DIR
RUNS_DIR holds one folder per run (scripts/people_eval.sh: one per frame rate), each with <clip>.jsonl.
Every figure is the runs' mean, with their range in brackets. Scoring is score_truth.py's (the team's
scorer): recall, mean landmark error, id switches, extra (unmatched) output people.
"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCORER = os.path.join(HERE, "score_truth.py")


def score(truth, output, fp=True):
    args = ["python3", SCORER, truth, output] + (["--fp"] if fp else [])
    return json.loads(subprocess.check_output(args))


def add(pooled, o):
    """Adds one clip's score to a set's totals: person-frames, found, error × found, switches, extra."""
    found = round(o["recall"] * o["truth_person_frames"])
    pooled[0] += o["truth_person_frames"]
    pooled[1] += found
    pooled[2] += (o["mean_px"] or 0.0) * found
    pooled[3] += o["id_switches"]
    pooled[4] += o.get("unmatched_outputs", 0)


def spread(values, digits):
    m = statistics.mean(values)
    if max(values) - min(values) < 10 ** -digits:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def main():
    runs_dir, mp_dir, set_dir, fix_dir = sys.argv[1:5]
    runs = sorted(d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d)))
    if not runs:
        sys.exit(f"no runs in {runs_dir}")
    sets = [
        ("tuning", [(mp_dir, c) for c in ("mp_kb_basketball1", "mp_cross2", "mp_cross3")]
         + [(set_dir, c) for c in ("e_side2", "e_swap2", "e_enter3", "e_fast2", "e_desk2", "e_hide3")]),
        ("held out", [(mp_dir, c) for c in ("mp_leave3", "mp_cross4", "mp_pass2", "mp_weave3")]),
    ]
    print(f"{len(runs)} runs ({', '.join(runs)}); mean [range] over them. MediaPipe Tasks: num_poses 3, VIDEO.")
    print()
    print("| set | clip | recall | mean px | id switches | extra | MediaPipe recall | mean px | switches |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, clips in sets:
        pooled = {r: [0, 0, 0.0, 0, 0] for r in runs}
        mp_pooled = [0, 0, 0.0, 0, 0]
        for base, clip in clips:
            truth = os.path.join(base, f"{clip}.truth.jsonl")
            rows = [score(truth, os.path.join(runs_dir, r, f"{clip}.jsonl")) for r in runs]
            for r, o in zip(runs, rows):
                add(pooled[r], o)
            m = score(truth, os.path.join(base, f"{clip}.mediapipe_tasks.jsonl"))
            add(mp_pooled, m)
            print(f"| {name} | `{clip}` | {spread([o['recall'] for o in rows], 3)} "
                  f"| {spread([o['mean_px'] or 0.0 for o in rows], 2)} "
                  f"| {spread([o['id_switches'] for o in rows], 1)} "
                  f"| {spread([o['unmatched_outputs'] for o in rows], 1)} "
                  f"| {m['recall']:.3f} | {m['mean_px']} | {m['id_switches']} |")
        recall = [p[1] / p[0] for p in pooled.values()]
        mean = [p[2] / max(1, p[1]) for p in pooled.values()]
        print(f"| **{name}, pooled** | {len(clips)} clips | **{spread(recall, 3)}** | **{spread(mean, 2)}** "
              f"| **{spread([p[3] for p in pooled.values()], 1)}** "
              f"| {spread([p[4] for p in pooled.values()], 1)} "
              f"| {mp_pooled[1] / mp_pooled[0]:.3f} | {mp_pooled[2] / max(1, mp_pooled[1]):.2f} | {mp_pooled[3]} |")
    print()
    print("| Ken Burns clip | recall | mean px | p95 px | MediaPipe video mode recall | mean px | p95 px |")
    print("|---|---|---|---|---|---|---|")
    for clip in ("kenburns_messi", "kenburns_astronaut", "kenburns_basketball1"):
        truth = os.path.join(fix_dir, "truth", f"{clip}.truth.jsonl")
        rows = [score(truth, os.path.join(runs_dir, r, f"{clip}.jsonl"), fp=False) for r in runs]
        m = score(truth, os.path.join(fix_dir, f"{clip}.video.ref.jsonl"), fp=False)
        print(f"| `{clip}` | {spread([o['recall'] for o in rows], 3)} "
              f"| {spread([o['mean_px'] for o in rows], 2)} | {spread([o['p95_px'] for o in rows], 1)} "
              f"| {m['recall']:.3f} | {m['mean_px']} | {m['p95_px']} |")


if __name__ == "__main__":
    main()
