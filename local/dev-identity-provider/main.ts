import { processEnv } from '../../lib/config/env.js';
import { isEntryPoint, runMain } from '../../lib/entry-point.js';
import { Policy } from '../../services/reveal-api/index.js';
import { loadDevIdentityProviderConfig, rolesForLogin } from './config.js';
import { createDevIdentityProvider, listenDevIdentityProvider } from './provider.js';

/** The development OpenID provider as a process (docker compose service `idp`). NOT FOR PRODUCTION. */
async function main(): Promise<void> {
  const config = loadDevIdentityProviderConfig(processEnv());
  const roles = (await Policy.load(config.POLICY_FILE)).roles;
  const provider = await createDevIdentityProvider({
    issuer: config.DEV_IDP_ISSUER.replace(/\/$/, ''),
    clientId: config.DEV_IDP_CLIENT_ID,
    redirectUris: config.DEV_IDP_REDIRECT_URIS,
    resource: config.DEV_IDP_RESOURCE,
    resourceScope: config.DEV_IDP_SCOPE,
    rolesOf: (login) => rolesForLogin(login, roles),
  });
  const { server, port } = await listenDevIdentityProvider(provider, config.DEV_IDP_HOST, config.DEV_IDP_PORT);
  console.log(
    `development OpenID provider (NOT FOR PRODUCTION) at ${provider.issuer}, listening on ${config.DEV_IDP_HOST}:${port}; ` +
      `sign in with a role as login name (${roles.join(', ')}) or name.role, any password; ` +
      `a token for curl: curl -s -X POST ${provider.issuer}/dev/token -d sub=alice -d roles=investigator`,
  );
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    });
  }
}

if (isEntryPoint(import.meta.url)) runMain('dev-identity-provider', main);
