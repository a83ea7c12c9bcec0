import type { ListenTarget } from '../../lib/net/listen-errors.js';
import { buildRevealApp, type RevealApp, type RevealDeps } from './app.js';
import type { RevealConfig } from './config.js';

/** What a running reveal-api needs besides its settings; the caller owns (and closes) them. */
export type RevealApiDeps = Pick<RevealDeps, 'database' | 'keys' | 'logger' | 'localSigningKey'>;

/** The address the reveal-api listens on and the settings that choose it, for messages. */
export function revealListenTarget(config: RevealConfig): ListenTarget {
  return { setting: 'PORT', port: config.port, host: config.host, hostSetting: 'HOST' };
}

/**
 * The reveal-api as configured: built (app.ts), then listening on HOST:PORT. Used by the
 * container entry point (main.ts) and the local stack (local/start.ts), so both run the same
 * thing with the same settings. `onBuilt` runs before the listen (a caller wires its logs and
 * shutdown to the app there). If the listen fails the app is closed and the error thrown as it
 * is: callers name the setting to change (revealListenTarget) in their own words.
 */
export async function startRevealApi(config: RevealConfig, deps: RevealApiDeps, onBuilt?: (app: RevealApp) => void): Promise<RevealApp> {
  const app = await buildRevealApp({ config, ...deps });
  onBuilt?.(app);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  return app;
}
