import type { Env } from '../lib/config/env.js';
import { ConfigError } from '../lib/errors.js';
import { JWT_KEY_SOURCES } from '../services/reveal-api/index.js';

export type JwtKeySetting = (typeof JWT_KEY_SOURCES)[number];

/**
 * The JWT key source the user set for `npm start`, or undefined for the local identity provider
 * (.data/jwt, `npm run token`). Any one of them replaces the local provider; two at once stop the
 * start, naming both, rather than one silently winning.
 */
export function userJwtKeySetting(env: Env): JwtKeySetting | undefined {
  const set = JWT_KEY_SOURCES.filter((name) => (env[name] ?? '').trim() !== '');
  if (set.length > 1) {
    throw new ConfigError(`Invalid configuration:\n  ${set.join(' and ')} are set together: set exactly one JWT key source (or none for the local identity provider)`, set);
  }
  return set[0];
}
