#!/usr/bin/env bash
# Makes the committed seed corpora of the fuzz targets (fuzz/seeds/<target>/), small valid inputs that
# start the fuzzer inside each format. Needs Debian's ffmpeg (tiny images cut from the test fixtures)
# and python3; the session seed is cut from a real recording made by `livepose serve --record`
# (tests/it/sessions.rs makes the same kind), passed as $1 (a session folder). Not part of the build.
# Usage: fuzz/make_seeds.sh SESSION_DIR
set -euo pipefail
cd "$(dirname "$0")"
SESSION="${1:?usage: fuzz/make_seeds.sh SESSION_DIR (a folder recorded by livepose serve --record)}"
FIX=../tests/fixtures
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf seeds && mkdir -p seeds/{wire_binary,wire_json,http_upgrade,image_decode,mjpeg_split,session_files,result_line,socketio_packets}

# Images: 16×12 cuts of messi5.jpg as JPEG (4:2:0, 4:2:2, 4:4:4; ffmpeg 5.1 writes no greyscale or progressive JPEG), PNG
# (RGB and RGBA), lossy and lossless WebP.
q() { ffmpeg -loglevel error -y -i "$FIX/messi5.jpg" -vf scale=16:12 "$@"; }
q -q:v 5 seeds/image_decode/baseline.jpg
q -q:v 5 -pix_fmt yuvj444p seeds/image_decode/yuv444.jpg
q -q:v 5 -pix_fmt yuvj422p seeds/image_decode/yuv422.jpg
q seeds/image_decode/rgb.png
q -pix_fmt rgba seeds/image_decode/rgba.png
q -c:v libwebp -quality 50 seeds/image_decode/lossy.webp
q -c:v libwebp -lossless 1 seeds/image_decode/lossless.webp
python3 - "$FIX" <<'PY'
import base64, json, struct, sys, pathlib
fix = pathlib.Path(sys.argv[1])
img = pathlib.Path("seeds/image_decode")
jpeg = (img / "baseline.jpg").read_bytes()
png = (img / "rgb.png").read_bytes()

def binary(seq, ts, image):
    return b"LP" + bytes([1, 1]) + struct.pack("<Qd", seq, ts) + image
pathlib.Path("seeds/wire_binary/jpeg").write_bytes(binary(7, 1234.5, jpeg))
pathlib.Path("seeds/wire_binary/png").write_bytes(binary(0, 0.0, png))
pathlib.Path("seeds/wire_binary/short").write_bytes(b"LP\x01\x01" + b"\x00" * 8)

b64 = base64.b64encode(jpeg).decode()
seeds = {
    "native": {"type": "frame", "sequence": 3, "timestamp": 1700000000123.25, "image": "data:image/jpeg;base64," + b64},
    "bare_base64": {"type": "frame", "sequence": 4, "timestamp": 16.5, "image": b64},
    "unknown_type": {"type": "hello", "sequence": 1},
}
for name, msg in seeds.items():
    pathlib.Path(f"seeds/wire_json/{name}").write_text(json.dumps(msg))
# The prototype's payload as its page sent it (key order of socket.emit('frame', {image, timestamp, sequence})).
pathlib.Path("seeds/wire_json/prototype").write_text(
    '{"type":"frame","image":"data:image/jpeg;base64,%s","timestamp":1733300000000,"sequence":12}' % b64)

heads = {
    "upgrade": "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"
               "Origin: http://127.0.0.1:8000\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "upgrade_lan": "GET /ws?token=abc HTTP/1.1\r\nHost: 192.168.1.20:8000\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
                   "Origin: http://192.168.1.20:8000/\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "page": "GET /index.html HTTP/1.1\r\nHost: localhost:8000\r\nAccept: text/html\r\n\r\n",
    "healthz": "HEAD /healthz HTTP/1.0\r\n\r\n",
    "metrics": "GET /metrics HTTP/1.1\r\nHost: [::1]:8000\r\nUser-Agent: Prometheus/2.42.0\r\n\r\n",
}
for name, head in heads.items():
    pathlib.Path(f"seeds/http_upgrade/{name}").write_bytes(head.encode())

# Socket.IO long-polling bodies (Engine.IO v4 packets joined by \x1e): the prototype's frame event with a
# data URL and with a binary attachment (b + base64), the namespace CONNECT, a pong, an acknowledged
# event, a close, and the upgrade probe's packets; and a request head for the handshake.
rs = "\x1e"
sio = {
    "frame_data_url": '42["frame",{"image":"data:image/jpeg;base64,%s","timestamp":1733300000000,"sequence":12}]' % b64,
    "frame_attachment": '451-["frame",{"image":{"_placeholder":true,"num":0},"timestamp":16.5,"sequence":1}]' + rs + "b" + b64,
    "connect_pong_ack": rs.join(["40", "3", '427["frame",{"image":"%s","timestamp":1,"sequence":2}]' % b64, "41/admin,", "1"]),
    "probe": rs.join(["2probe", "5", "6"]),
}
for name, body in sio.items():
    pathlib.Path(f"seeds/socketio_packets/{name}").write_text(body)
pathlib.Path("seeds/http_upgrade/socketio_polling").write_bytes(
    b"POST /socket.io/?EIO=4&transport=polling&t=PaB1x&sid=lv_VI97HAXpY6yYWAAAC HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Origin: http://localhost:3000\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n")

# MJPEG: the first two frames of carphone_640.mjpeg would be ~60 KB; two tiny JPEGs with padding instead.
grey = (img / "yuv422.jpg").read_bytes()
pathlib.Path("seeds/mjpeg_split/two_frames").write_bytes(jpeg + b"\r\n" + grey)
pathlib.Path("seeds/mjpeg_split/one_frame").write_bytes((img / "yuv444.jpg").read_bytes())
PY

# Session: the real recording's session.json and its first two frames and results.
python3 - "$SESSION" <<'PY'
import json, pathlib, struct, sys
src = pathlib.Path(sys.argv[1])
info = (src / "session.json").read_bytes()
index = (src / "frames.jsonl").read_text().splitlines(keepends=True)[:2]
results = (src / "results.jsonl").read_text().splitlines(keepends=True)[:2]
frames_len = max(json.loads(l)["offset"] + json.loads(l)["len"] for l in index)
out = struct.pack("<I", frames_len) + info + b"\0" + "".join(index).encode() + b"\0" + "".join(results).encode()
pathlib.Path("seeds/session_files/two_frames").write_bytes(out)
# A cut-off recording: the second result line torn.
pathlib.Path("seeds/session_files/torn").write_bytes(out[: len(out) - 300])
pathlib.Path("seeds/result_line/result").write_text(results[0].rstrip("\n"))
pathlib.Path("seeds/result_line/two_lines").write_text("".join(results))
PY
echo "fuzz seeds:"; du -sh seeds/*
