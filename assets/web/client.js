// livepose browser client: captures a camera (or a local video file), streams frames to the server's
// WebSocket in the binary form of docs/PROTOCOL.md, and draws everyone's skeleton over its own video
// (each person in a colour of their own with their id; hands teal, outlined in their person's colour),
// blending each person's last two results as the prototype did (a person only with themselves, by id),
// or ("Show: tracked frame") the frame that was tracked with its own skeleton. It measures capture to
// draw: from a frame's capture to the first draw of its result.
// No build step, no dependencies.
'use strict';
(() => {
  const PROTOCOL_VERSION = 1;
  const HEADER_BYTES = 20;
  // Backpressure: skip a frame (never queue it) while this much is unsent or this many are unanswered.
  const MAX_BUFFERED_BYTES = 256 * 1024;
  const MAX_UNANSWERED = 2;
  // A frame with no answer after this long was dropped by the server (its slot is latest-wins).
  const UNANSWERED_EXPIRY_MS = 2000;
  const RTT_WINDOW = 200;
  const BODY_COLOR = '#ff40a1';
  const HAND_COLOR = '#00c7bf';
  // Each person's colour by id: the prototype's pink for the first (as the app's).
  const PERSON_COLORS = [BODY_COLOR, '#ff9e1a', '#737fff', '#d9f233', '#bf59ff', '#ff4d40'];
  const personColor = (id) => PERSON_COLORS[(Math.max(1, id) - 1) % PERSON_COLORS.length];
  const POSE_EDGES = [[0,1],[1,2],[2,3],[3,7],[0,4],[4,5],[5,6],[6,8],[9,10],[11,12],[11,13],[13,15],
    [15,17],[15,19],[15,21],[17,19],[12,14],[14,16],[16,18],[16,20],[16,22],[18,20],[11,23],[12,24],
    [23,24],[23,25],[24,26],[25,27],[26,28],[27,29],[28,30],[29,31],[30,32],[27,31],[28,32]];
  const HAND_EDGES = [[0,1],[1,2],[2,3],[3,4],[0,5],[5,6],[6,7],[7,8],[5,9],[9,10],[10,11],[11,12],
    [9,13],[13,14],[14,15],[15,16],[13,17],[0,17],[17,18],[18,19],[19,20]];
  const VISIBLE = 0.5;

  const params = new URLSearchParams(location.search);
  // Opened from the pairing address (QR code): the server has set its cookie, which the browser sends
  // with every request of this page, the WebSocket's too. Drop the token from the address bar so it
  // stays out of history, bookmarks and screenshots.
  if (params.has('token')) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  // Encoding of the frames sent: JPEG (small, the default), PNG (lossless, ~9× larger: for loopback)
  // or WebP. `?encoding=png` and `?quality=80` (percent) preset the controls.
  const ENCODINGS = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };
  if (params.get('encoding') in ENCODINGS) document.getElementById('encoding').value = params.get('encoding');
  if (params.get('quality')) document.getElementById('quality').value = params.get('quality');
  // `?resolution=960x540` asks the camera for that size (added to the choices if it is not one).
  const wanted = /^(\d{2,4})x(\d{2,4})$/.exec(params.get('resolution') || '');
  if (wanted) {
    const select = document.getElementById('resolution');
    if (![...select.options].some((o) => o.value === wanted[0])) {
      select.add(new Option(`${wanted[1]}×${wanted[2]}`, wanted[0]));
    }
    select.value = wanted[0];
  }
  // `?show=tracked` shows the tracked frame with its own skeleton instead of the live video.
  if (params.get('show') === 'tracked') document.getElementById('show').value = 'tracked';
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const overlay = $('overlay');
  const capture = document.createElement('canvas');
  // The frames sent, kept for the "tracked frame" view: a small ring of canvases by sequence number
  // (at most MAX_UNANSWERED frames are in flight, so a frame is still here when its result comes).
  const KEPT_FRAMES = 8;
  const kept = Array.from({ length: KEPT_FRAMES }, () => ({ seq: -1, canvas: document.createElement('canvas') }));
  const frameCanvas = $('frame');
  const showsTracked = () => $('show').value === 'tracked';
  // Capture to draw: from a frame's capture to the first draw of its result, the last DRAW_WINDOW.
  const DRAW_WINDOW = 200;

  const state = {
    running: false, ws: null, hello: null, seq: 0, encoding: false,
    sent: 0, skipped: 0, results: 0, errors: 0, errorCodes: {}, lastError: null,
    unanswered: new Map(), rtts: [], sendTimes: [], resultTimes: [],
    previous: null, newest: null,
    draws: 0, drawsWithPose: 0, lastDrawn: null,
    drawLatencies: [], lastDrawnSeq: -1, frameShownSeq: -1,
  };

  // ---- capture --------------------------------------------------------------------------------------
  let stream = null;
  let freshFrame = false;
  let lastTime = -1;

  async function listCameras() {
    const select = $('camera');
    const current = select.value;
    const devices = await navigator.mediaDevices.enumerateDevices();
    select.innerHTML = '';
    devices.filter((d) => d.kind === 'videoinput').forEach((d, i) => {
      const option = document.createElement('option');
      option.value = d.deviceId;
      option.textContent = d.label || `camera ${i}`;
      select.appendChild(option);
    });
    if (current) select.value = current;
  }

  function notice(text) {
    const el = $('notice');
    el.textContent = text || '';
    el.classList.toggle('shown', Boolean(text));
  }

  // Why the camera cannot be used, in words a phone's user can act on.
  function cameraProblem(e) {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return `This browser gives the camera only to secure pages, and ${location.origin} is not one. `
        + 'Open the https:// address that livepose serve printed (or scan its QR code), or use localhost.';
    }
    const name = e && e.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') {
      return 'Camera permission was denied. Allow the camera for this site in the browser\'s settings '
        + '(the icon next to the address), then press Start again.';
    }
    if (name === 'NotFoundError' || name === 'OverconstrainedError') {
      return 'No camera matches the choice (front/back/device). Pick another camera and press Start.';
    }
    if (name === 'NotReadableError') {
      return 'The camera is in use by another app or tab. Close it, then press Start again.';
    }
    return `Cannot open the camera: ${(e && e.message) || e}`;
  }

  async function openCamera() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error('no camera API on this page'), { name: 'InsecureContext' });
    }
    const [width, height] = $('resolution').value.split('x').map(Number);
    const facing = $('facing').value;
    const deviceId = $('camera').value;
    const choice = facing === 'device'
      ? (deviceId ? { deviceId: { exact: deviceId } } : {})
      : { facingMode: { ideal: facing } };
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: width }, height: { ideal: height }, ...choice },
      audio: false,
    });
    notice('');
    // The selfie view is mirrored by default, the back camera's is not.
    if (facing !== 'device') {
      $('mirror').checked = facing === 'user';
      $('stage').style.transform = facing === 'user' ? 'scaleX(-1)' : '';
    }
    video.srcObject = stream;
    await listCameras();
  }

  function closeCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
  }

  function watchFrames() {
    if (!('requestVideoFrameCallback' in video)) return;
    const onFrame = () => { freshFrame = true; if (state.running) video.requestVideoFrameCallback(onFrame); };
    video.requestVideoFrameCallback(onFrame);
  }

  function hasNewFrame() {
    if ('requestVideoFrameCallback' in video) {
      const fresh = freshFrame;
      freshFrame = false;
      return fresh;
    }
    const changed = video.currentTime !== lastTime;
    lastTime = video.currentTime;
    return changed;
  }

  function sendFrame() {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || video.readyState < 2 || !video.videoWidth) return;
    const now = performance.now();
    for (const [seq, sentAt] of state.unanswered) {
      if (now - sentAt > UNANSWERED_EXPIRY_MS) state.unanswered.delete(seq);
    }
    if (state.encoding || ws.bufferedAmount > MAX_BUFFERED_BYTES || state.unanswered.size >= MAX_UNANSWERED) {
      state.skipped += 1;
      return;
    }
    capture.width = video.videoWidth;
    capture.height = video.videoHeight;
    capture.getContext('2d').drawImage(video, 0, 0, capture.width, capture.height);
    const capturedAt = performance.now();
    const seq = ++state.seq;
    if (showsTracked()) {
      const slot = kept[seq % KEPT_FRAMES];
      slot.seq = seq;
      slot.canvas.width = capture.width;
      slot.canvas.height = capture.height;
      slot.canvas.getContext('2d').drawImage(capture, 0, 0);
    }
    state.encoding = true;
    capture.toBlob(async (blob) => {
      state.encoding = false;
      if (!blob || ws.readyState !== WebSocket.OPEN) return;
      const image = new Uint8Array(await blob.arrayBuffer());
      const message = new Uint8Array(HEADER_BYTES + image.length);
      const view = new DataView(message.buffer);
      message[0] = 0x4c; message[1] = 0x50; // "LP"
      message[2] = PROTOCOL_VERSION;
      message[3] = 1; // frame
      view.setBigUint64(4, BigInt(seq), true);
      view.setFloat64(12, capturedAt, true);
      message.set(image, HEADER_BYTES);
      ws.send(message);
      state.sent += 1;
      state.unanswered.set(seq, capturedAt);
      state.sendTimes.push(performance.now());
    }, ENCODINGS[$('encoding').value] || 'image/jpeg', Number($('quality').value) / 100);
  }

  // ---- connection -----------------------------------------------------------------------------------
  function connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => setStatus('connected');
    ws.onmessage = (event) => onMessage(event.data);
    ws.onclose = (event) => {
      if (state.ws === ws) state.ws = null;
      if (state.running) {
        setStatus(`disconnected (${event.code} ${event.reason || ''}); reconnecting`, true);
        setTimeout(() => { if (state.running && !state.ws) state.ws = connect(); }, 1000);
      }
    };
    ws.onerror = () => setStatus('connection error', true);
    return ws;
  }

  function onMessage(data) {
    let message;
    try { message = JSON.parse(data); } catch (e) { return; }
    const now = performance.now();
    if (message.type === 'hello') {
      state.hello = message;
      setStatus(`connected: ${message.server}, model ${message.model}`);
    } else if (message.type === 'pose_result') {
      // Older unanswered frames were dropped by the server's latest-wins slot.
      for (const seq of state.unanswered.keys()) if (seq < message.sequence) state.unanswered.delete(seq);
      state.unanswered.delete(message.sequence);
      state.rtts.push(now - message.timestamp);
      if (state.rtts.length > RTT_WINDOW) state.rtts.shift();
      state.results += 1;
      state.resultTimes.push(now);
      state.previous = state.newest;
      state.newest = { at: now, message };
    } else if (message.type === 'error') {
      state.errors += 1;
      state.errorCodes[message.code] = (state.errorCodes[message.code] || 0) + 1;
      state.lastError = message;
      if (message.sequence !== undefined) state.unanswered.delete(message.sequence);
      setStatus(`server: ${message.code}: ${message.message}`, true);
    }
  }

  // ---- drawing --------------------------------------------------------------------------------------
  const lerp = (a, b, t) => a + (b - a) * t;

  function blendPoints(from, to, t) {
    if (!from || from.length !== to.length) return to;
    return to.map((p, i) => ({ ...p, x_px: lerp(from[i].x_px, p.x_px, t), y_px: lerp(from[i].y_px, p.y_px, t),
      visibility: p.visibility === undefined ? undefined : lerp(from[i].visibility, p.visibility, t) }));
  }

  /** Everyone in a result: its people, or (a server from before people) its top-level pose as person 1. */
  function peopleOf(message) {
    if (Array.isArray(message.people)) return message.people;
    return message.pose ? [{ id: 1, pose: message.pose, hands: message.hands || [] }] : [];
  }

  function blendPerson(a, b, t) {
    const pose = a.pose && b.pose ? { ...b.pose, landmarks: blendPoints(a.pose.landmarks, b.pose.landmarks, t) } : b.pose;
    const hands = (b.hands || []).map((hand) => {
      const match = (a.hands || []).find((h) => h.handedness === hand.handedness);
      return match ? { ...hand, landmarks: blendPoints(match.landmarks, hand.landmarks, t) } : hand;
    });
    return { ...b, pose, hands };
  }

  /** The prototype's blend: t = time since the newest result / interval between the last two, ≤ 1; each
   *  person blended only with the same id's previous result. A person who left is not drawn; one who
   *  just came is drawn where they are. */
  function blended(now) {
    const newest = state.newest;
    if (!newest) return null;
    const b = newest.message;
    const previous = state.previous;
    // The tracked frame is shown with its own result, never a blend.
    if (!$('interpolate').checked || !previous || showsTracked()) return { ...b, people: peopleOf(b) };
    const interval = newest.at - previous.at;
    const t = interval > 0 ? Math.min(1, Math.max(0, (now - newest.at) / interval)) : 1;
    const before = peopleOf(previous.message);
    const people = peopleOf(b).map((person) => {
      const same = before.find((p) => p.id === person.id);
      return same ? blendPerson(same, person, t) : person;
    });
    return { ...b, people };
  }

  function drawSkeleton(ctx, points, edges, color, radius, outline) {
    const alpha = (p) => (p.visibility === undefined ? 1 : p.visibility >= VISIBLE ? 1 : 0.25);
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = Math.max(2, radius * 0.8);
    for (const [i, j] of edges) {
      ctx.globalAlpha = Math.min(alpha(points[i]), alpha(points[j]));
      ctx.beginPath();
      ctx.moveTo(points[i].x_px, points[i].y_px);
      ctx.lineTo(points[j].x_px, points[j].y_px);
      ctx.stroke();
    }
    for (const p of points) {
      ctx.globalAlpha = alpha(p);
      ctx.beginPath();
      ctx.arc(p.x_px, p.y_px, radius, 0, 2 * Math.PI);
      ctx.fill();
      if (outline) {
        ctx.strokeStyle = outline;
        ctx.lineWidth = Math.max(1, radius * 0.5);
        ctx.stroke();
        ctx.strokeStyle = color;
        ctx.lineWidth = Math.max(2, radius * 0.8);
      }
    }
    ctx.globalAlpha = 1;
  }

  /** In the "tracked frame" view, the frame of the result drawn, once per result. */
  function showTrackedFrame(seq) {
    $('stage').classList.toggle('tracked', showsTracked());
    if (!showsTracked() || seq === state.frameShownSeq) return;
    const slot = kept[seq % KEPT_FRAMES];
    if (slot.seq !== seq) return;
    frameCanvas.width = slot.canvas.width;
    frameCanvas.height = slot.canvas.height;
    frameCanvas.getContext('2d').drawImage(slot.canvas, 0, 0);
    state.frameShownSeq = seq;
  }

  function draw(now) {
    const result = blended(now);
    if (!result) return;
    showTrackedFrame(result.sequence);
    if (result.sequence !== state.lastDrawnSeq) {
      state.lastDrawnSeq = result.sequence;
      // The result echoes the frame's capture time (this page's clock), as the round trip uses it.
      if (typeof result.timestamp === 'number') {
        state.drawLatencies.push(performance.now() - result.timestamp);
        if (state.drawLatencies.length > DRAW_WINDOW) state.drawLatencies.shift();
      }
    }
    if (overlay.width !== result.width || overlay.height !== result.height) {
      overlay.width = result.width;
      overlay.height = result.height;
    }
    const ctx = overlay.getContext('2d');
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const radius = Math.max(3, overlay.width / 200);
    const drawnPeople = [];
    for (const person of result.people) {
      const color = personColor(person.id);
      if (person.pose) drawSkeleton(ctx, person.pose.landmarks, POSE_EDGES, color, radius);
      for (const hand of person.hands || []) {
        drawSkeleton(ctx, hand.landmarks, HAND_EDGES, HAND_COLOR, radius * 0.7, color);
      }
      const visible = (person.pose ? person.pose.landmarks : []).filter((p) => p.visibility >= VISIBLE);
      if (visible.length) {
        const top = visible.reduce((a, p) => (p.y_px < a.y_px ? p : a));
        ctx.font = `bold ${Math.round(radius * 4)}px sans-serif`;
        ctx.textAlign = 'center';
        ctx.fillStyle = color;
        // The stage may be mirrored (CSS): the label is mirrored back so that it reads.
        ctx.save();
        ctx.translate(top.x_px, Math.max(radius * 4, top.y_px - radius * 3));
        if ($('mirror').checked) ctx.scale(-1, 1);
        ctx.fillText(`#${person.id}`, 0, 0);
        ctx.restore();
      }
      // [x, y, opaque]: opaque when drawn in full colour (visible), else drawn faint.
      drawnPeople.push({ id: person.id,
        pose: person.pose ? person.pose.landmarks.map((p) => [p.x_px, p.y_px, p.visibility >= VISIBLE]) : null });
    }
    // Hands of nobody (no person in view): as before, teal.
    if (!result.people.length) {
      for (const hand of result.hands || []) drawSkeleton(ctx, hand.landmarks, HAND_EDGES, HAND_COLOR, radius * 0.7);
    }
    if (result.people.length) state.drawsWithPose += 1;
    state.draws += 1;
    state.lastDrawn = { sequence: result.sequence, pose: drawnPeople.length ? drawnPeople[0].pose : null,
      people: drawnPeople, canvas: [overlay.width, overlay.height] };
  }

  // ---- stats ----------------------------------------------------------------------------------------
  function percentile(values, q) {
    if (!values.length) return null;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  function perSecond(times, now) {
    while (times.length && now - times[0] > 1000) times.shift();
    return times.length;
  }

  function summary() {
    const now = performance.now();
    const newest = state.newest ? state.newest.message : null;
    return {
      sent: state.sent, skipped: state.skipped, results: state.results, errors: state.errors,
      errorCodes: { ...state.errorCodes }, lastError: state.lastError,
      sendFps: perSecond(state.sendTimes, now), resultFps: perSecond(state.resultTimes, now),
      rttP50: percentile(state.rtts, 0.5), rttP95: percentile(state.rtts, 0.95),
      drawP50: percentile(state.drawLatencies, 0.5), drawP95: percentile(state.drawLatencies, 0.95),
      show: $('show').value,
      serverDropped: newest ? newest.counters.dropped : 0,
      draws: state.draws, drawsWithPose: state.drawsWithPose, lastDrawn: state.lastDrawn,
      video: [video.videoWidth, video.videoHeight],
    };
  }

  function showStats() {
    const s = summary();
    const ms = (v) => (v === null ? '–' : `${v.toFixed(0)} ms`);
    $('s-sent').textContent = s.sent;
    $('s-send-fps').textContent = s.sendFps;
    $('s-results').textContent = s.results;
    $('s-result-fps').textContent = s.resultFps;
    $('s-rtt').textContent = `${ms(s.rttP50)} / ${ms(s.rttP95)}`;
    $('s-draw').textContent = `${ms(s.drawP50)} / ${ms(s.drawP95)}`;
    $('s-skipped').textContent = s.skipped;
    $('s-dropped').textContent = s.serverDropped;
    $('s-errors').textContent = s.errors;
    const newest = state.newest ? state.newest.message : null;
    if (newest) {
      const t = newest.timings_ms;
      $('s-infer').textContent = `${newest.model}: ${(t.total || 0).toFixed(1)} ms + decode ${newest.server.decode_ms.toFixed(1)} ms`;
      const rows = Object.entries(newest.angles).map(([name, a]) =>
        `<tr><td>${name.replace('_', ' ')}</td><td>${(a.radians * 180 / Math.PI).toFixed(0)}°</td>` +
        `<td>${(a.confidence * 100).toFixed(0)}%</td></tr>`);
      $('angles').innerHTML = rows.join('');
    }
  }

  function setStatus(text, error = false) {
    const el = $('status');
    el.textContent = text;
    el.className = error ? 'error' : '';
  }

  // ---- control --------------------------------------------------------------------------------------
  function tick(now) {
    if (!state.running) return;
    requestAnimationFrame(tick);
    if (hasNewFrame()) sendFrame();
    draw(now);
  }

  async function start(fileSource) {
    if (state.running) stop();
    try {
      if (fileSource) {
        closeCamera();
        video.srcObject = null;
        video.src = URL.createObjectURL(fileSource);
        video.loop = true;
      } else {
        video.removeAttribute('src');
        await openCamera();
      }
      await video.play();
    } catch (e) {
      if (!fileSource) notice(cameraProblem(e));
      setStatus(`cannot open the ${fileSource ? 'file' : 'camera'}: ${e.message || e}`, true);
      return;
    }
    state.running = true;
    state.ws = connect();
    watchFrames();
    requestAnimationFrame(tick);
    $('start').disabled = true;
    $('stop').disabled = false;
  }

  function stop() {
    state.running = false;
    if (state.ws) state.ws.close(1000, 'stopped');
    state.ws = null;
    closeCamera();
    video.pause();
    $('start').disabled = false;
    $('stop').disabled = true;
    setStatus('stopped');
  }

  $('start').onclick = () => start(null);
  $('stop').onclick = stop;
  $('file').onchange = (e) => { if (e.target.files[0]) start(e.target.files[0]); };
  $('camera').onchange = () => {
    $('facing').value = 'device';
    if (state.running && stream) start(null);
  };
  $('facing').onchange = () => { if (state.running && stream) start(null); };
  $('resolution').onchange = () => { if (state.running && stream) start(null); };
  $('mirror').onchange = (e) => { $('stage').style.transform = e.target.checked ? 'scaleX(-1)' : ''; };
  setInterval(showStats, 250);
  if (navigator.mediaDevices && navigator.mediaDevices.enumerateDevices) listCameras().catch(() => {});
  if (!window.isSecureContext || !navigator.mediaDevices) notice(cameraProblem(null));
  window.livepose = { state, start, stop, summary };
  if (params.get('autostart') === '1') start(null);
})();
