"""Receives VMC bundles with python-osc (an OSC implementation independent of livepose's rosc) and
checks each one. Run by tests/vmc_osc.rs:

    python receive.py [--idle 3] [--max 180] [--port N]

Prints the UDP port it listens on (127.0.0.1) as its first line, then, once no datagram has come for
--idle seconds after the first one (or --max seconds in all), one JSON line: the number of bundles, what
was wrong with any of them, and per bundle the /VMC/Ext/OK arguments and /VMC/Ext/T.
"""

import argparse
import json
import math
import socket
import sys
import time

from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

# Unity's HumanBodyBones (UnityEngine.HumanBodyBones, without LastBone).
HUMAN_BODY_BONES = {
    "Hips", "LeftUpperLeg", "RightUpperLeg", "LeftLowerLeg", "RightLowerLeg", "LeftFoot",
    "RightFoot", "Spine", "Chest", "UpperChest", "Neck", "Head", "LeftShoulder", "RightShoulder",
    "LeftUpperArm", "RightUpperArm", "LeftLowerArm", "RightLowerArm", "LeftHand", "RightHand",
    "LeftToes", "RightToes", "LeftEye", "RightEye", "Jaw",
} | {
    f"{side}{finger}{joint}"
    for side in ("Left", "Right")
    for finger in ("Thumb", "Index", "Middle", "Ring", "Little")
    for joint in ("Proximal", "Intermediate", "Distal")
}


def transform_problems(where, params):
    problems = []
    if len(params) != 8 or not isinstance(params[0], str):
        return [f"{where}: expected (name, 3 floats, 4 floats), got {params!r}"]
    values = params[1:]
    if not all(isinstance(v, float) and math.isfinite(v) for v in values):
        problems.append(f"{where} {params[0]}: non-finite or non-float value {values!r}")
        return problems
    norm = math.sqrt(sum(v * v for v in values[3:]))
    if abs(norm - 1.0) > 1e-4:
        problems.append(f"{where} {params[0]}: quaternion norm {norm}")
    return problems


def check(dgram):
    problems = []
    if not OscBundle.dgram_is_bundle(dgram):
        return None, ["a datagram that is not a bundle"]
    bundle = OscBundle(dgram)
    record = {"bones": [], "root": 0, "ok": None, "t": None}
    for item in bundle:
        if not isinstance(item, OscMessage):
            problems.append("a nested bundle")
            continue
        if item.address == "/VMC/Ext/Bone/Pos":
            problems += transform_problems("Bone/Pos", item.params)
            name = item.params[0] if item.params else None
            if name not in HUMAN_BODY_BONES:
                problems.append(f"bone name {name!r} is not a HumanBodyBones name")
            record["bones"].append(name)
        elif item.address == "/VMC/Ext/Root/Pos":
            problems += transform_problems("Root/Pos", item.params)
            record["root"] += 1
        elif item.address == "/VMC/Ext/OK":
            record["ok"] = list(item.params)
        elif item.address == "/VMC/Ext/T":
            record["t"] = item.params[0] if item.params else None
        else:
            problems.append(f"unexpected address {item.address}")
    if len(set(record["bones"])) != len(record["bones"]):
        problems.append("a bone sent twice in one bundle")
    if record["root"] != 1 or record["ok"] is None or record["t"] is None:
        problems.append(f"bundle lacks Root/Pos, OK or T: {record}")
    return record, problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--max", type=float, default=180.0)
    parser.add_argument("--port", type=int, default=0, help="listen on this port (default: any free one)")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", args.port))
    print(sock.getsockname()[1], flush=True)
    start = time.monotonic()
    last = None
    bundles, problems = [], []
    while time.monotonic() - start < args.max:
        if last is not None and time.monotonic() - last > args.idle:
            break
        sock.settimeout(0.2)
        try:
            dgram, _ = sock.recvfrom(65536)
        except socket.timeout:
            continue
        last = time.monotonic()
        record, found = check(dgram)
        problems += found
        if record is not None:
            bundles.append({"ok": record["ok"], "t": record["t"], "bones": len(record["bones"]),
                            "names": sorted(record["bones"]) if not bundles else None})
    print(json.dumps({"bundles": bundles, "problems": problems[:20]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
