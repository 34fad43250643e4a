"""python-socketio's client (pinned in tests/requirements.txt) against a running livepose, as the
prototype's frames were sent: `frame` events {image, timestamp, sequence}, `pose_result` events back.
Driven by tests/socketio.rs, which checks every result against the engine.

Usage: client.py URL FRAMES_DIR [COUNT]
  - default transports (long-polling, then the upgrade to WebSocket through websocket-client);
  - frames as data URLs, fire and forget at 30 fps, with a disconnect and a reconnect half-way;
  - then frames as `bytes` (binary attachments), one at a time, every fourth with an acknowledgement.
Prints one JSON object on stdout.
"""

import base64
import json
import pathlib
import sys
import threading
import time

import socketio

TIMEOUT_S = 20.0


def main():
    url, frames_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    frames = [p.read_bytes() for p in sorted(frames_dir.glob("*.jpg"))]
    count = min(len(frames), int(sys.argv[3])) if len(sys.argv) > 3 else len(frames)
    out = {"results": [], "hellos": [], "errors": [], "events": [], "sent": [], "acks": []}
    lock = threading.Condition()

    def client(label):
        sio = socketio.Client(reconnection=False)

        @sio.on("hello")
        def on_hello(hello):
            with lock:
                out["hellos"].append({"label": label, "client_id": hello["client_id"]})

        @sio.on("error")
        def on_error(error):
            with lock:
                out["errors"].append(dict(error, label=label))
                lock.notify_all()

        @sio.on("pose_result")
        def on_result(result):
            with lock:
                out["results"].append({
                    "label": label,
                    "transport": sio.transport(),
                    "sequence": result["sequence"],
                    "result": result,
                })
                lock.notify_all()

        return sio

    def wait_for(label, sequence):
        deadline = time.monotonic() + TIMEOUT_S
        with lock:
            while not any(r["label"] == label and r["sequence"] == sequence for r in out["results"]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{label}: no pose_result for sequence {sequence}")
                lock.wait(left)

    # 1. Data URLs at 30 fps, a disconnect and a reconnect half-way.
    sio = client("data_url")

    @sio.on("connect")
    def on_connect():
        # python-engineio opens on long-polling and upgrades before it reports the connection.
        out["events"].append({"event": "connect", "transport": sio.transport()})

    requests_seen = []
    original_send = sio.eio._send_request

    def spy(method, url_, *args, **kwargs):
        requests_seen.append({"method": method, "transport": "polling" if "transport=polling" in url_ else "other"})
        return original_send(method, url_, *args, **kwargs)

    sio.eio._send_request = spy
    sio.connect(url, wait_timeout=TIMEOUT_S)
    out["events"].append({"event": "open", "transport": requests_seen[0]["transport"] if requests_seen else "none"})
    half = count // 2
    sequence = 0
    for k in range(count):
        if k == half:
            time.sleep(0.3)
            sio.disconnect()
            out["events"].append({"event": "disconnect", "connected": sio.connected})
            time.sleep(0.2)
            sio.connect(url, wait_timeout=TIMEOUT_S)
            out["events"].append({"event": "reconnect", "transport": sio.transport()})
        sequence += 1
        image = "data:image/jpeg;base64," + base64.b64encode(frames[k]).decode()
        timestamp = time.monotonic() * 1000.0
        sio.emit("frame", {"image": image, "timestamp": timestamp, "sequence": sequence})
        out["sent"].append({"label": "data_url", "sequence": sequence, "frame": k})
        time.sleep(0.033)
    try:
        wait_for("data_url", sequence)
    except TimeoutError as e:
        out["events"].append({"event": "missing_last", "error": str(e)})
    out["events"].append({"event": "final_transport", "transport": sio.transport()})
    sio.disconnect()

    # 2. bytes: binary attachments, one at a time; every fourth with an acknowledgement.
    sio = client("binary")
    sio.connect(url, wait_timeout=TIMEOUT_S)
    for k in range(count):
        frame = {"image": frames[k], "timestamp": time.monotonic() * 1000.0, "sequence": k + 1}
        out["sent"].append({"label": "binary", "sequence": k + 1, "frame": k})
        if k % 4 == 0:
            out["acks"].append(sio.call("frame", frame, timeout=TIMEOUT_S))
        else:
            sio.emit("frame", frame)
        wait_for("binary", k + 1)
    sio.disconnect()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
