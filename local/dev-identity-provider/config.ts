import { z } from 'zod';
import { envInt, envUrl, parseEnv, type Env } from '../../lib/config/env.js';
import { DEFAULT_POLICY_FILE } from '../../services/reveal-api/index.js';

const commaList = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0))
  .pipe(z.array(envUrl).min(1, { message: 'expected a comma-separated list of URLs' }));

/** Settings of the development OpenID provider (docker compose service `idp`). */
export const devIdentityProviderEnvSchema = z.object({
  /** The issuer: the address the browser reaches it at (and the reveal-api's JWT_ISSUER). */
  DEV_IDP_ISSUER: envUrl,
  DEV_IDP_HOST: z.string().min(1).default('127.0.0.1'),
  DEV_IDP_PORT: envInt(0, 65_535).default(9400),
  DEV_IDP_CLIENT_ID: z.string().min(1).default('tokenvault-console'),
  /** The console's addresses (https://<api>/console/): redirect URIs of the client. */
  DEV_IDP_REDIRECT_URIS: commaList,
  /** The reveal-api's resource indicator and token audience (its JWT_AUDIENCE, CONSOLE_OIDC_RESOURCE). */
  DEV_IDP_RESOURCE: envUrl,
  DEV_IDP_SCOPE: z.string().regex(/^[a-z][a-z0-9_.-]*$/, { message: 'expected one scope name' }).default('tokenvault'),
  /** The roles a login can get: those of this policy. */
  POLICY_FILE: z.string().min(1).default(DEFAULT_POLICY_FILE),
});

export type DevIdentityProviderConfig = z.infer<typeof devIdentityProviderEnvSchema>;

export function loadDevIdentityProviderConfig(env: Env): DevIdentityProviderConfig {
  return parseEnv(devIdentityProviderEnvSchema, env);
}

/**
 * The roles of a login name: a role of the policy signs in as that role (`auditor`), and
 * `name.role` gives a second person the same role (`olga.approver` approves `investigator`'s
 * requests). Anything else gets no roles.
 */
export function rolesForLogin(login: string, known: readonly string[]): string[] {
  // A dot, not a plus: `curl -d sub=olga+approver` would send a space.
  const role = login.includes('.') ? login.slice(login.lastIndexOf('.') + 1) : login;
  return known.includes(role) ? [role] : [];
}
