#!/usr/bin/env python3
# Copied from the team's shared data set (shared/data/scripts/make_people_media.py) on 2026-12-07;
# extended here with "path" keyframes and "truth_inside_patch" for composites (see the docstring); recipes
# without them give the shared script's output byte for byte.
"""Make multi-person clips with identity truth (run with the MediaPipe 0.10.21 venv of setup_mediapipe_venv.sh).

For every photo in the recipe: per-person truth = legacy MediaPipe Pose (static, complexity 1) on the
padded crop of each box, in photo px -> OUT/<stem>.people.json.
Ken Burns clips over those photos -> OUT/<clip>.mjpeg + OUT/<clip>.truth.jsonl (each frame: every
person's 33 landmarks through the frame's affine, and which are visible).
Composites: rectangular patches of single people moving over a grey background, later patches on top,
crossing -> OUT/<clip>.mjpeg + .truth.jsonl (occluded landmarks are marked not visible).
usage: make_people_media.py RECIPE.json SRC_DIR OUT_DIR   (a photo's "dir" is relative to SRC_DIR)

A composite patch: {"src", "dir", "box": [x0,y0,x1,y1] (source px), "scale", and its motion}. The motion
is either
  "from": [x, y], "to": [x, y]       the patch centre (canvas px) moves linearly over the clip, or
  "path": [[t, x, y], ...]           (livepose extension, 2026-12-07) keyframes of the centre, t in 0..1
                                     (t = frame / (frames - 1)), t increasing; the centre is interpolated
                                     linearly between keyframes and held before the first and after the
                                     last. Two keyframes with the same x, y hold the patch still.
A centre may lie anywhere, also off the canvas: only the part of the patch inside the canvas is drawn,
and its landmarks outside the canvas are not visible in the truth. So a person enters later by starting
off the canvas (e.g. a path that holds a centre beyond the right edge until t = 0.3, then walks in), and
leaves and comes back by a path that goes off the canvas and returns. A person wholly off the canvas
keeps its truth row (same "person" id) with every landmark marked not visible. The truth's person ids
are the patches' positions in the recipe list, so ids are stable across leaving and coming back.
A composite may set "truth_inside_patch": true (livepose extension, default false): a landmark outside the
person's own patch is then not visible in the truth. MediaPipe's static landmarks of a crop can lie beyond
it (e.g. the astronaut's ankles, grace_hopper's right elbow, below their crops) with visibility >= 0.5;
those points are on the grey background, and without this key the truth marks them visible.
Recipes with "from"/"to" (and without the keys above) give byte-identical output to the shared data
set's version of this script.
"""
import json, math, os, sys
import cv2, numpy as np
import mediapipe as mp

recipe_path, steer, out = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import refdata_lib as lib  # write_mjpeg
from make_media import kenburns_affine

spec = json.load(open(recipe_path))
os.makedirs(out, exist_ok=True)
pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                              min_detection_confidence=0.3)

def person_from_crop(img, box, others=(), pad=0.25):
    """Tries the padded crop, then a tighter one, then one with the other people's boxes greyed out."""
    for pad_, mask in ((pad, False), (0.08, False), (0.08, True)):
        src = img
        if mask:
            src = img.copy()
            for o in others:
                src[o[1]:o[3], o[0]:o[2]] = 128
            # keep the person's own box
            src[box[1]:box[3], box[0]:box[2]] = img[box[1]:box[3], box[0]:box[2]]
        p = _person_from_crop(src, box, pad_)
        if p:
            return p
    return None

def _person_from_crop(img, box, pad):
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cx0, cy0 = max(0, int(x0 - pad * bw)), max(0, int(y0 - pad * bh))
    cx1, cy1 = min(w, int(x1 + pad * bw)), min(h, int(y1 + pad * bh))
    crop = np.ascontiguousarray(img[cy0:cy1, cx0:cx1])
    r = pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
    if not r.pose_landmarks:
        return None
    ch, cw = crop.shape[:2]
    lms = [{"x_px": l.x * cw + cx0, "y_px": l.y * ch + cy0, "visibility": l.visibility} for l in r.pose_landmarks.landmark]
    # the person found must be the one in the box: hips' and shoulders' midpoint inside it
    mx = np.mean([lms[i]["x_px"] for i in (11, 12, 23, 24)]); my = np.mean([lms[i]["y_px"] for i in (11, 12, 23, 24)])
    if not (x0 <= mx <= x1 and y0 <= my <= y1):
        print(f"  box {box}: the pose found is centred at ({mx:.0f},{my:.0f}), outside the box", file=sys.stderr)
        return None
    return {"box": box, "landmarks": lms}

def tasks_boxes(img):
    from mediapipe.tasks.python import vision, BaseOptions
    task = os.environ["POSE_TASK"]  # a .task made by make_pose_task.py
    lm = vision.PoseLandmarker.create_from_options(vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=task), running_mode=vision.RunningMode.IMAGE, num_poses=5))
    r = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))))
    h, w = img.shape[:2]; boxes = []
    for p in r.pose_landmarks:
        xs = [l.x * w for l in p if l.visibility > 0.5]; ys = [l.y * h for l in p if l.visibility > 0.5]
        boxes.append([int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys))])
    return boxes

people = {}
for name, info in spec["photos"].items():
    img = cv2.imread(os.path.join(steer, info["dir"], name))
    boxes = info["people"] if info["people"] != "from_tasks" else tasks_boxes(img)
    found = [person_from_crop(img, b, [o for o in boxes if o is not b]) for b in boxes]
    people[name] = [p for p in found if p]
    with open(os.path.join(out, name.rsplit(".", 1)[0] + ".people.json"), "w") as f:
        json.dump({"photo": name, "size": [img.shape[1], img.shape[0]], "people": people[name],
                   "optional_boxes": info.get("optional", [])}, f)
    print(f"{name}: {len(people[name])} of {len(boxes)} people with truth")

def truth_line(k, persons, W, H, occluders=(), inside_own=False):
    """inside_own: a landmark outside its own patch (occluders[pid], the same list order) is not visible."""
    rows = []
    for pid, (lms, M, z) in enumerate(persons):
        pts = []
        for l in lms:
            x = M[0][0] * l["x_px"] + M[0][1] * l["y_px"] + M[0][2]
            y = M[1][0] * l["x_px"] + M[1][1] * l["y_px"] + M[1][2]
            vis = l["visibility"] >= 0.5 and 0 <= x < W and 0 <= y < H
            for (oz, (ox0, oy0, ox1, oy1)) in occluders:
                if oz > z and ox0 <= x <= ox1 and oy0 <= y <= oy1:
                    vis = False
            if inside_own:
                px0, py0, px1, py1 = occluders[pid][1]
                if not (px0 <= x <= px1 and py0 <= y <= py1):
                    vis = False
            pts.append([round(x, 3), round(y, 3), vis])
        rows.append({"person": pid, "landmarks": pts})
    return {"frame": k, "people": rows}

for item in spec["kenburns"]:
    src = item["src"]; info = spec["photos"][src]
    img = cv2.imread(os.path.join(steer, info["dir"], src)); h, w = img.shape[:2]
    W, H = item["size"]; frames = []; truth = []
    for i in range(item["frames"]):
        m, _ = kenburns_affine(item, w, h, i)
        frames.append(cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        truth.append(truth_line(i, [(p["landmarks"], m.tolist(), 0) for p in people[src]], W, H))
    lib.write_mjpeg(os.path.join(out, item["out"]), frames)
    with open(os.path.join(out, item["out"].rsplit(".", 1)[0] + ".truth.jsonl"), "w") as f:
        for t in truth: f.write(json.dumps(t) + "\n")
    print(f"{item['out']}: {len(frames)} frames, {len(people[src])} people")

def centre_at(p, t):
    """The patch centre at t in 0..1: "from"/"to" (linear, as in the shared script) or "path" keyframes."""
    if "path" not in p:
        return (p["from"][0] + (p["to"][0] - p["from"][0]) * t,
                p["from"][1] + (p["to"][1] - p["from"][1]) * t)
    path = p["path"]
    if t <= path[0][0]:
        return path[0][1], path[0][2]
    for (ta, xa, ya), (tb, xb, yb) in zip(path, path[1:]):
        if t <= tb:
            u = (t - ta) / (tb - ta)
            return xa + (xb - xa) * u, ya + (yb - ya) * u
    return path[-1][1], path[-1][2]

def check_path(p):
    path = p.get("path")
    if path is None:
        if "from" not in p or "to" not in p:
            raise SystemExit(f"patch {p.get('src')}: needs \"from\" and \"to\", or \"path\"")
        return
    if not path or any(len(k) != 3 for k in path):
        raise SystemExit(f"patch {p.get('src')}: \"path\" must be a non-empty list of [t, x, y]")
    ts = [k[0] for k in path]
    if any(not 0 <= x <= 1 for x in ts) or any(b <= a for a, b in zip(ts, ts[1:])):
        raise SystemExit(f"patch {p.get('src')}: path times must rise strictly within 0..1, got {ts}")

for item in spec["composites"]:
    W, H = item["size"]; n = item["frames"]
    patches = []
    for z, p in enumerate(item["patches"]):
        check_path(p)
        img = cv2.imread(os.path.join(steer, p["dir"], p["src"]))
        x0, y0, x1, y1 = p["box"]
        crop = np.ascontiguousarray(img[y0:y1, x0:x1])
        s = p["scale"]
        crop = cv2.resize(crop, (int(round(crop.shape[1] * s)), int(round(crop.shape[0] * s))), interpolation=cv2.INTER_AREA)
        r = pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if not r.pose_landmarks:
            raise SystemExit(f"no pose in patch {p}")
        ch, cw = crop.shape[:2]
        lms = [{"x_px": l.x * cw, "y_px": l.y * ch, "visibility": l.visibility} for l in r.pose_landmarks.landmark]
        patches.append((crop, lms, p, z))
    frames = []; truth = []
    for i in range(n):
        t = i / (n - 1)
        canvas = np.full((H, W, 3), 128, np.uint8)
        persons = []; occ = []
        for crop, lms, p, z in patches:
            ch, cw = crop.shape[:2]
            cx, cy = centre_at(p, t)
            ox, oy = int(round(cx - cw / 2)), int(round(cy - ch / 2))
            # paste with clipping
            sx0, sy0 = max(0, -ox), max(0, -oy)
            dx0, dy0 = max(0, ox), max(0, oy)
            dx1, dy1 = min(W, ox + cw), min(H, oy + ch)
            if dx1 > dx0 and dy1 > dy0:
                canvas[dy0:dy1, dx0:dx1] = crop[sy0:sy0 + (dy1 - dy0), sx0:sx0 + (dx1 - dx0)]
            persons.append((lms, [[1, 0, ox], [0, 1, oy]], z))
            occ.append((z, (ox, oy, ox + cw - 1, oy + ch - 1)))
        frames.append(canvas)
        truth.append(truth_line(i, persons, W, H, occ, item.get("truth_inside_patch", False)))
    lib.write_mjpeg(os.path.join(out, item["out"]), frames)
    with open(os.path.join(out, item["out"].rsplit(".", 1)[0] + ".truth.jsonl"), "w") as f:
        for t in truth: f.write(json.dumps(t) + "\n")
    print(f"{item['out']}: {n} frames, {len(patches)} people")
