import { join } from 'node:path';
import { isEntryPoint, runMain } from '../lib/entry-point.js';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseEnv, processEnv, type Env } from '../lib/config/env.js';
import { ensureLocalSigningKey, mintLocalToken } from '../lib/auth/local-signing-key.js';
import { DEFAULT_POLICY_FILE, Policy } from '../services/reveal-api/index.js';
import { closest } from '../lib/validation/did-you-mean.js';

const tokenEnvSchema = z.object({
  TOKENVAULT_DATA_DIR: z.string().min(1).default('.data'),
  /** The reveal API's policy: the roles it knows are the roles worth minting. */
  POLICY_FILE: z.string().min(1).default(DEFAULT_POLICY_FILE),
});

const USAGE = 'usage: npm run token -- --sub <subject> --roles <role[,role...]> [--ttl 15m] [--dir .data/jwt] [--allow-unknown-roles]';

/**
 * `npm run token -- --sub alice --roles investigator`: prints a JWT signed with the local
 * stack's ES256 key (created under .data/jwt on first use), nothing else, so it can be
 * captured with $(...). For local development only.
 */
export async function runTokenCli(argv: string[], env: Env, output = { out: console.log, err: console.error }): Promise<number> {
  let values: { sub?: string; roles?: string; ttl?: string; dir?: string; help?: boolean; 'allow-unknown-roles'?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { sub: { type: 'string' }, roles: { type: 'string' }, ttl: { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean' }, 'allow-unknown-roles': { type: 'boolean' } },
      strict: true,
    }));
  } catch (error) {
    output.err(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    output.out(USAGE);
    return 0;
  }
  const sub = values.sub?.trim();
  if (sub === undefined || sub === '') {
    output.err(`--sub is required\n${USAGE}`);
    return 2;
  }
  const roles = (values.roles ?? '')
    .split(',')
    .map((role) => role.trim())
    .filter((role) => role.length > 0);
  const ttl = values.ttl ?? '15m';
  if (!/^[0-9]+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days)?$/.test(ttl)) {
    output.err(`--ttl: expected a duration such as 90s, 15m or 1h\n${USAGE}`);
    return 2;
  }
  const settings = parseEnv(tokenEnvSchema, env);
  if (values['allow-unknown-roles'] !== true) {
    let known: string[];
    try {
      known = (await Policy.load(settings.POLICY_FILE)).roles.sort();
    } catch (error) {
      output.err(`cannot read the policy (POLICY_FILE=${settings.POLICY_FILE}) to check --roles: ${error instanceof Error ? error.message : String(error)}`);
      return 1;
    }
    const unknown = roles.filter((role) => !known.includes(role));
    if (unknown.length > 0) {
      // A typo would mint a token every route refuses with a bare 403: say so now.
      const hints = unknown.map((role) => {
        const near = closest(role, known);
        return near === undefined ? `"${role}"` : `"${role}" (did you mean "${near}"?)`;
      });
      output.err(
        `--roles: the policy does not know ${hints.join(', ')}; known roles: ${known.join(', ')} (${settings.POLICY_FILE}). ` +
          `Pass --allow-unknown-roles to mint it anyway.\n${USAGE}`,
      );
      return 2;
    }
  }
  const dir = values.dir ?? join(settings.TOKENVAULT_DATA_DIR, 'jwt');
  const key = await ensureLocalSigningKey(dir);
  output.out(await mintLocalToken(key, { sub, roles, ttl: /^[0-9]+$/.test(ttl) ? Number(ttl) : ttl }));
  return 0;
}

if (isEntryPoint(import.meta.url)) runMain('token', () => runTokenCli(process.argv.slice(2), processEnv()));
