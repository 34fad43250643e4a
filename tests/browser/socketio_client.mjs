// The prototype's client side, unchanged: socket.io-client 4 (pinned in package-lock.json) with its default
// options, emitting `frame` events {image, timestamp, sequence} and listening for `pose_result`, against a
// running livepose. Driven by tests/socketio.rs, which checks every result against the engine.
//
// Usage: node socketio_client.mjs SCENARIO URL FRAMES_DIR [COUNT]
//   stream     default options (long-polling, then the upgrade to WebSocket); frames as data URLs at 30 fps,
//              fire and forget, as the prototype's page sent them; a disconnect and reconnect half-way; then
//              a second socket sends the frames as binary attachments (Buffer), one at a time, some with
//              an acknowledgement callback.
//   roundtrip  one frame at a time, the next when the result is back: livepose's WebSocket (/ws, the same
//              JSON frames), Socket.IO on long-polling only, and Socket.IO after the upgrade; prints the
//              round trips of each.
//   paired     default options with the URL as given (its ?token=… query), frames one at a time once
//              upgraded.
// Prints one JSON object on stdout. A self-signed certificate is trusted through NODE_EXTRA_CA_CERTS.
import { io } from "socket.io-client";
import WebSocket from "ws";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const [scenario, url, framesDir, countArg] = process.argv.slice(2);
const files = readdirSync(framesDir).filter((f) => f.endsWith(".jpg")).sort();
const frames = files.map((f) => readFileSync(join(framesDir, f)));
const count = Math.min(frames.length, Number(countArg || frames.length));
const TIMEOUT_MS = 20000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dataUrl = (jpeg) => "data:image/jpeg;base64," + jpeg.toString("base64");

function once(emitter, event, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what || event} within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Keeps what a socket receives: every pose_result (with the transport it came on), hellos, errors. */
function record(socket, label, sink) {
  socket.on("hello", (hello) => sink.hellos.push({ label, client_id: hello.client_id, protocol: hello.protocol }));
  socket.on("error", (error) => sink.errors.push({ label, ...error }));
  socket.on("pose_result", (result) => {
    sink.results.push({
      label,
      transport: socket.io.engine.transport.name,
      sequence: result.sequence,
      received_ms: performance.now(),
      result,
    });
  });
}

/** Waits until the results of `label` include `sequence` (or the timeout). */
async function resultFor(sink, label, sequence) {
  const deadline = performance.now() + TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (sink.results.some((r) => r.label === label && r.sequence === sequence)) return;
    await sleep(2);
  }
  throw new Error(`${label}: no pose_result for sequence ${sequence}`);
}

async function stream() {
  const sink = { results: [], hellos: [], errors: [], events: [], sent: [], acks: [] };
  // 1. The prototype's page: io(url) with default options, data URLs at 30 fps.
  const socket = io(url);
  record(socket, "data_url", sink);
  // The Engine.IO session opens on long-polling; the upgrade may complete before the namespace's CONNECT.
  socket.io.once("open", () => {
    sink.events.push({ event: "open", transport: socket.io.engine.transport.name });
    socket.io.engine.on("upgrade", (transport) => sink.events.push({ event: "upgrade", transport: transport.name }));
  });
  await once(socket, "connect");
  sink.events.push({ event: "connect", transport: socket.io.engine.transport.name });
  const half = Math.floor(count / 2);
  let sequence = 0;
  for (let k = 0; k < count; k++) {
    if (k === half) {
      // Mid-stream: the user's network drops (or the page calls disconnect); the page connects again.
      await sleep(300);
      socket.disconnect();
      sink.events.push({ event: "disconnect", connected: socket.connected });
      await sleep(200);
      socket.connect();
      await once(socket, "connect", "connect after reconnecting");
      sink.events.push({ event: "reconnect", transport: socket.io.engine.transport.name });
    }
    sequence += 1;
    const timestamp = performance.now();
    socket.emit("frame", { image: dataUrl(frames[k]), timestamp, sequence });
    sink.sent.push({ label: "data_url", sequence, frame: k, timestamp });
    await sleep(33);
  }
  await resultFor(sink, "data_url", sequence).catch((e) => sink.events.push({ event: "missing_last", error: String(e) }));
  sink.events.push({ event: "final_transport", transport: socket.io.engine.transport.name });
  socket.disconnect();

  // 2. Binary attachments (an ArrayBuffer or Buffer image), one at a time; every fourth with an ack.
  const binary = io(url, { forceNew: true });
  record(binary, "binary", sink);
  await once(binary, "connect");
  for (let k = 0; k < count; k++) {
    const frame = { image: frames[k], timestamp: performance.now(), sequence: k + 1 };
    sink.sent.push({ label: "binary", sequence: k + 1, frame: k, timestamp: frame.timestamp });
    if (k % 4 === 0) {
      const [ack] = await new Promise((resolve) => binary.emit("frame", frame, (...args) => resolve(args)));
      sink.acks.push(ack);
    } else {
      binary.emit("frame", frame);
    }
    await resultFor(sink, "binary", k + 1);
  }
  // A bad frame gets an `error` event; the socket stays connected.
  binary.emit("frame", { image: "data:image/jpeg;base64,bm90IGFuIGltYWdl", timestamp: performance.now(), sequence: count + 1 });
  const [error] = await once(binary, "error", "an error event for a bad frame");
  sink.events.push({ event: "bad_frame", code: error.code, connected: binary.connected });
  binary.disconnect();
  return sink;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function summary(rtts) {
  const sorted = [...rtts].sort((a, b) => a - b);
  return { n: sorted.length, p50_ms: percentile(sorted, 0.5), p95_ms: percentile(sorted, 0.95) };
}

/** Round trips of `count` frames sent one at a time over a connected Socket.IO socket. */
async function socketioRoundTrips(socket, expectTransport) {
  const rtts = [];
  for (let k = 0; k < count; k++) {
    if (socket.io.engine.transport.name !== expectTransport) {
      throw new Error(`on ${socket.io.engine.transport.name}, expected ${expectTransport}`);
    }
    const sent = performance.now();
    const done = once(socket, "pose_result");
    socket.emit("frame", { image: dataUrl(frames[k]), timestamp: sent, sequence: k + 1 });
    const [result] = await done;
    if (result.sequence !== k + 1) throw new Error(`result for ${result.sequence}, sent ${k + 1}`);
    rtts.push(performance.now() - sent);
  }
  return rtts;
}

async function roundtrip() {
  const out = {};
  // livepose's own WebSocket, the same JSON frames.
  const wsUrl = url.replace(/^http/, "ws").replace(/\/?$/, "/ws");
  const ws = new WebSocket(wsUrl);
  const messages = [];
  let wake = null;
  ws.on("message", (data) => {
    messages.push(JSON.parse(data.toString()));
    if (wake) wake();
  });
  await once(ws, "open");
  const next = async (type) => {
    const deadline = performance.now() + TIMEOUT_MS;
    for (;;) {
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) return messages.splice(i, 1)[0];
      if (performance.now() > deadline) throw new Error(`no ${type} on /ws`);
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
  };
  await next("hello");
  const native = [];
  for (let k = 0; k < count; k++) {
    const sent = performance.now();
    ws.send(JSON.stringify({ type: "frame", image: dataUrl(frames[k]), timestamp: sent, sequence: k + 1 }));
    const result = await next("pose_result");
    if (result.sequence !== k + 1) throw new Error(`/ws: result for ${result.sequence}, sent ${k + 1}`);
    native.push(performance.now() - sent);
  }
  ws.close();
  out.websocket = summary(native);

  // Socket.IO, long-polling only (the transport before an upgrade).
  const polling = io(url, { forceNew: true, transports: ["polling"] });
  await once(polling, "connect");
  out.socketio_polling = summary(await socketioRoundTrips(polling, "polling"));
  polling.disconnect();

  // Socket.IO with default options, once upgraded to WebSocket.
  const upgraded = io(url, { forceNew: true });
  await once(upgraded, "connect");
  if (upgraded.io.engine.transport.name !== "websocket") await once(upgraded.io.engine, "upgrade");
  out.socketio_websocket = summary(await socketioRoundTrips(upgraded, "websocket"));
  upgraded.disconnect();
  return out;
}

/** Default options against the URL as given (a pairing token in its query must reach every request of
 * the session: the long-polls, the posts and the upgrade); frames one at a time once upgraded. */
async function paired() {
  const socket = io(url);
  let openedOn = null;
  socket.io.once("open", () => (openedOn = socket.io.engine.transport.name));
  const refused = once(socket, "connect_error").then(([e]) => {
    throw new Error(`connect_error: ${e.message} (HTTP ${e.description})`);
  });
  await Promise.race([once(socket, "connect"), refused]);
  if (socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade");
  const rtts = await socketioRoundTrips(socket, "websocket");
  socket.disconnect();
  return { opened_on: openedOn, ...summary(rtts) };
}

const run = { stream, roundtrip, paired }[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
run()
  .then((out) => {
    // Exit once the pipe has taken everything (an early exit cuts a large write short).
    process.stdout.write(JSON.stringify(out), () => process.exit(0));
  })
  .catch((e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
  });
