// A page written the way the prototype's frontend was: served from its own origin (as a dev server on
// localhost:3000 would), it loads socket.io-client's browser build, captures the camera into a canvas, and
// every 33 ms emits `frame` {image: <JPEG data URL>, timestamp, sequence}; it draws each `pose_result`'s body
// landmarks in pink over the video. Debian's Chromium (headless, fake camera) runs it against a livepose
// server. Used by tests/browser_e2e.rs, with the arguments of e2e.mjs:
//   node tests/browser/socketio_page.mjs http://localhost:PORT/?server=<livepose url> <video .y4m> <seconds> <screenshot.png>
// (it serves the page itself on PORT). Prints the page's state as JSON. With SOCKETIO_EXPECT_REFUSAL=1 it
// waits for a connect_error instead of results.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchWithFakeCamera } from './chromium.mjs';

const [pageUrl, video, seconds, screenshot] = process.argv.slice(2);
const port = new URL(pageUrl).port;
const here = dirname(fileURLToPath(import.meta.url));
const bundle = readFileSync(join(here, 'node_modules/socket.io-client/dist/socket.io.min.js'));

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>prototype frontend</title>
<style>body{margin:0;background:#111} #stage{position:relative;width:640px;height:480px}
video,canvas{position:absolute;left:0;top:0;width:640px;height:480px}</style></head>
<body><div id="stage"><video id="video" autoplay playsinline muted></video><canvas id="overlay" width="640" height="480"></canvas></div>
<canvas id="grab" width="640" height="480" style="display:none"></canvas>
<script src="/socket.io.min.js"></script>
<script>
const server = new URLSearchParams(location.search).get('server');
const socket = io(server);
const state = { sent: 0, results: 0, withPose: 0, errors: 0, errorList: [], connectErrors: [], openedOn: null, upgradedTo: null };
window.state = state;
socket.io.on('open', () => {
  state.openedOn = socket.io.engine.transport.name;
  socket.io.engine.on('upgrade', (t) => { state.upgradedTo = t.name; });
});
socket.on('connect_error', (e) => state.connectErrors.push(e.message + ' ' + (e.description || '')));
socket.on('error', (e) => { state.errors++; state.errorList.push(e); });
const overlay = document.getElementById('overlay').getContext('2d');
socket.on('pose_result', (r) => {
  state.results++;
  state.lastCounters = r.counters;
  state.resultsAtLastCounters = state.results;
  state.transport = socket.io.engine.transport.name;
  overlay.clearRect(0, 0, 640, 480);
  if (!r.pose) { (state.noPose = state.noPose || []).push(r.sequence); return; }
  state.withPose++;
  overlay.fillStyle = '#ff4fa3';
  for (const l of r.pose.landmarks) {
    overlay.beginPath();
    overlay.arc(l.x_px * 640 / r.width, l.y_px * 480 / r.height, 5, 0, 2 * Math.PI);
    overlay.fill();
  }
});
const video = document.getElementById('video');
const grab = document.getElementById('grab');
let sequence = 0;
navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } }).then((stream) => {
  video.srcObject = stream;
  setInterval(() => {
    if (!socket.connected || video.readyState < 2) return;
    grab.getContext('2d').drawImage(video, 0, 0, 640, 480);
    socket.emit('frame', { image: grab.toDataURL('image/jpeg', 0.9), timestamp: performance.now(), sequence: ++sequence });
    state.sent++;
  }, 33);
});
</script></body></html>`;

const http = createServer((req, res) => {
  if (req.url.startsWith('/socket.io.min.js')) {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    res.end(bundle);
  } else {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  }
});
await new Promise((resolve) => http.listen(Number(port), '127.0.0.1', resolve));

const { context, close } = await launchWithFakeCamera(video, { width: 640, height: 480 });
let code = 0;
try {
  const page = await context.newPage();
  page.on('console', (m) => console.error(`page: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(pageUrl);
  if (process.env.SOCKETIO_EXPECT_REFUSAL === '1') {
    await page.waitForFunction(() => window.state.connectErrors.length > 0, null, { timeout: 30000 });
  } else {
    await page.waitForFunction(() => window.state.results > 0, null, { timeout: 60000 });
    await page.waitForTimeout(Number(seconds) * 1000);
  }
  const state = await page.evaluate(() => window.state);
  await page.screenshot({ path: screenshot });
  process.stdout.write(JSON.stringify(state));
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  code = 1;
} finally {
  await close();
  http.close();
}
process.exit(code);
