// Debian's Chromium, headless, with a fake camera playing a video file: the launch both browser scripts
// share (e2e.mjs, socketio_page.mjs). The flags keep Chromium off this machine's closed network.
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A persistent context in a new profile; `close()` closes it and removes the profile. */
export async function launchWithFakeCamera(video, viewport, extraArgs = []) {
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
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${video}`, ...extraArgs],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
