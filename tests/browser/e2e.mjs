// Opens the livepose page in Debian's Chromium (headless) with a fake camera playing a video file,
// lets it stream for a while, then prints the page's own summary (window.livepose.summary()) as JSON,
// with the overlay canvas as a PNG data URL (`overlayPng`), and saves a screenshot. Used by tests/browser_e2e.rs; run by hand:
//   node tests/browser/e2e.mjs <page url> <video .y4m|.mjpeg> <seconds> <screenshot.png>
// E2E_CHROMIUM_ARGS: more Chromium flags, space-separated (the other-device test pins the server's
// self-signed certificate with --ignore-certificate-errors-spki-list). E2E_STATUS_ONLY=1: only load the
// page and print {"status": <HTTP status>} (the refused-without-token check).
import { launchWithFakeCamera } from './chromium.mjs';

const [url, video, seconds, screenshot] = process.argv.slice(2);
if (!url || !video || !seconds || !screenshot) {
  console.error('usage: e2e.mjs <page url> <video file> <seconds> <screenshot.png>');
  process.exit(2);
}
const { context, close } = await launchWithFakeCamera(video, { width: 1280, height: 720 },
  (process.env.E2E_CHROMIUM_ARGS || '').split(' ').filter(Boolean));
try {
  const page = await context.newPage();
  page.on('console', (m) => console.error(`page: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  const response = await page.goto(url);
  if (process.env.E2E_STATUS_ONLY === '1') {
    console.log(JSON.stringify({ status: response ? response.status() : null, body: await page.innerText('body') }));
  } else {
    const secure = await page.evaluate(() => ({
      isSecureContext: window.isSecureContext,
      mediaDevices: Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
    }));
    console.error(`page: secure context ${secure.isSecureContext}, camera API ${secure.mediaDevices}`);
    await page.waitForFunction(() => window.livepose && window.livepose.state.results > 0, null, { timeout: 60000 });
    await page.waitForTimeout(Number(seconds) * 1000);
    // The summary and the overlay canvas alone, in the frame's own pixels (what the page drew, where),
    // taken in one task so that no frame is drawn between them.
    const summary = {
      ...(await page.evaluate(() => ({
        ...window.livepose.summary(),
        overlayPng: document.getElementById('overlay').toDataURL('image/png'),
        // The "tracked frame" view's frame canvas (empty in the live view).
        framePng: document.getElementById('frame').toDataURL('image/png'),
      }))),
      ...secure,
    };
    await page.screenshot({ path: screenshot });
    console.log(JSON.stringify(summary));
  }
} finally {
  await close();
}
