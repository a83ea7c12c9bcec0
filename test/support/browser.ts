import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium, installed by .ci/run (apt-get install chromium). */
export const CHROMIUM = '/usr/bin/chromium';

export const hasChromium = existsSync(CHROMIUM);

/**
 * Browser tests run wherever Chromium is installed; on a machine without it they are skipped
 * with a message saying how to run them. CI installs it, and there a missing browser fails.
 */
export function browserTestsEnabled(suite: string): boolean {
  if (hasChromium) return true;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing on CI: .ci/run installs it with apt-get install chromium`);
  console.warn(
    `\n  SKIPPED browser tests "${suite}": ${CHROMIUM} not found.\n` +
      '  Install Debian\'s Chromium (apt-get install chromium, as .ci/run does) and run npm test (or npx vitest run test/console) to run them.\n',
  );
  return false;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh Chromium profile, headless, with nothing that talks to the internet. */
export async function launchBrowser(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'tokenvault-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    viewport: { width: 1366, height: 820 },
    acceptDownloads: true,
    timeout: 60_000,
  });
  context.setDefaultTimeout(20_000);
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
