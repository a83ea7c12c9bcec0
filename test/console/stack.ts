import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildConsole } from '../../local/console-build.js';
import { PUBLIC_KEY_SUFFIX } from '../../lib/keys/local-audit-signer.js';
import type { RevealApp } from '../../services/reveal-api/app.js';
import { startOpenIdProvider, type OpenIdProvider } from '../support/oidc-provider.js';
import { startRevealHarness, type RevealHarness } from '../support/reveal-harness.js';

/** Where screenshots of each view go (not committed; docs/console.png is picked from them). */
export const SCREENSHOTS = process.env.CONSOLE_SCREENSHOTS_DIR ?? join(tmpdir(), 'tokenvault-console-screenshots');

/** Who signs in at the test identity provider, and the roles its tokens carry. */
export const ACCOUNTS: Record<string, string[]> = {
  ivan: ['investigator'],
  sam: ['support'],
  audrey: ['auditor'],
  olga: ['privacy-officer'],
  april: ['approver'],
};

export interface ConsoleStack {
  harness: RevealHarness;
  provider: OpenIdProvider;
  /** The console served by an app that trusts the provider (JWT_JWKS_URL). */
  oidcApp: RevealApp;
  oidcUrl: string;
  /** The console of an app built like `npm start`: local sign-in, local signing key. */
  localApp: RevealApp;
  localUrl: string;
  close(): Promise<void>;
}

/**
 * What `npm start` runs, on loopback with port 0: a real database with sealed vault rows,
 * the built console, a real OpenID provider, and two apps (OpenID sign-in; local sign-in).
 */
export async function startConsoleStack(): Promise<ConsoleStack> {
  const consoleDir = await mkdtemp(join(tmpdir(), 'tokenvault-console-build-'));
  await buildConsole(consoleDir);
  await mkdir(SCREENSHOTS, { recursive: true });
  const harness = await startRevealHarness();
  const provider = await startOpenIdProvider(ACCOUNTS);
  const common = {
    CONSOLE_DIR: consoleDir,
    CONSOLE_REVEAL_CLEAR_SECONDS: '8',
    LOG_LEVEL: 'warn',
    // Signed checkpoints of the audit log with a local key (as npm start does), written when a
    // test asks (checkpointNow) rather than on a timer, so what they cover is decided by the test.
    AUDIT_SIGNING_KEY_FILE: join(consoleDir, '..', `${consoleDir.split('/').at(-1) ?? 'console'}-audit-signing-key.pem`),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0',
  };
  const oidcApp = await harness.buildApp({
    ...common,
    JWT_JWKS_URL: provider.jwksUrl,
    // The provider's keys replace the harness's local key: exactly one key source.
    JWT_PUBLIC_KEY: undefined,
    JWT_ISSUER: provider.issuer,
    JWT_AUDIENCE: provider.resource,
    CONSOLE_OIDC_ISSUER: provider.issuer,
    CONSOLE_OIDC_CLIENT_ID: provider.clientId,
    CONSOLE_OIDC_SCOPE: 'openid tokenvault',
    CONSOLE_OIDC_RESOURCE: provider.resource,
  });
  const oidcUrl = await listen(oidcApp);
  await provider.configure(`${oidcUrl}/console/`);
  const localApp = await harness.buildApp({ ...common, CONSOLE_LOCAL_SIGN_IN: 'true' }, { localStack: true });
  const localUrl = await listen(localApp);
  return {
    harness,
    provider,
    oidcApp,
    oidcUrl,
    localApp,
    localUrl,
    async close() {
      await harness.close();
      await provider.close();
      await rm(consoleDir, { recursive: true, force: true });
      await rm(common.AUDIT_SIGNING_KEY_FILE, { force: true });
      await rm(`${common.AUDIT_SIGNING_KEY_FILE}${PUBLIC_KEY_SUFFIX}`, { force: true });
    },
  };
}

async function listen(app: RevealApp): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}
