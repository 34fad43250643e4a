// Opens the livepose page in Debian's Chromium (headless) with a fake camera playing a video file,
// lets it stream for a while, then prints the page's own summary (window.livepose.summary()) as JSON
// and saves a screenshot. Used by tests/browser_e2e.rs; run by hand:
//   node tests/browser/e2e.mjs <page url> <video .y4m|.mjpeg> <seconds> <screenshot.png>
// E2E_CHROMIUM_ARGS: more Chromium flags, space-separated (the other-device test pins the server's
// self-signed certificate with --ignore-certificate-errors-spki-list). E2E_STATUS_ONLY=1: only load the
// page and print {"status": <HTTP status>} (the refused-without-token check).
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, video, seconds, screenshot] = process.argv.slice(2);
if (!url || !video || !seconds || !screenshot) {
  console.error('usage: e2e.mjs <page url> <video file> <seconds> <screenshot.png>');
  process.exit(2);
}
// The real binary of Debian's package (the /usr/bin/chromium wrapper works too, with a shell warning).
const executablePath = process.env.CHROMIUM
  || ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
if (!executablePath) {
  console.error('Chromium not found: install Debian\'s chromium package (make setup does)');
  process.exit(3);
}
const profile = await mkdtemp(join(tmpdir(), 'livepose-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${video}`,
    ...(process.env.E2E_CHROMIUM_ARGS || '').split(' ').filter(Boolean)],
});
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
    const summary = { ...(await page.evaluate(() => window.livepose.summary())), ...secure };
    await page.screenshot({ path: screenshot });
    console.log(JSON.stringify(summary));
  }
} finally {
  await context.close();
  await rm(profile, { recursive: true, force: true });
}
