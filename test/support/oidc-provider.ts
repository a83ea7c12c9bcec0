import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface OpenIdProvider {
  /** The issuer identifier (http://127.0.0.1:PORT), also the discovery base. */
  issuer: string;
  jwksUrl: string;
  /** The resource indicator access tokens are issued for (the reveal-api's JWT_AUDIENCE). */
  resource: string;
  clientId: string;
  /** Registers the console's redirect URI (known once the app listens) and starts answering. */
  configure(consoleUrl: string): Promise<void>;
  close(): Promise<void>;
}

export const CONSOLE_CLIENT_ID = 'tokenvault-console';
export const RESOURCE = 'https://tokenvault.example/reveal-api';
const RESOURCE_SCOPE = 'tokenvault';

/**
 * A real OpenID provider (the `oidc-provider` package) on loopback: authorization code with
 * PKCE for a public client, JWT access tokens for the reveal-api resource carrying a `roles`
 * claim, and its development login page where any login name signs in. `accounts` maps login
 * names to roles.
 */
export async function startOpenIdProvider(accounts: Record<string, string[]>): Promise<OpenIdProvider> {
  let handler: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;
  const server: Server = createServer((request, response) => {
    if (handler === undefined) {
      response.writeHead(503).end();
      return;
    }
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signingJwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'test-provider-key' };

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    resource: RESOURCE,
    clientId: CONSOLE_CLIENT_ID,
    async configure(consoleUrl) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: CONSOLE_CLIENT_ID,
            token_endpoint_auth_method: 'none',
            application_type: 'web',
            id_token_signed_response_alg: 'ES256',
            grant_types: ['authorization_code'],
            response_types: ['code'],
            redirect_uris: [consoleUrl],
            post_logout_redirect_uris: [consoleUrl],
          },
        ],
        jwks: { keys: [signingJwk] },
        scopes: ['openid', RESOURCE_SCOPE],
        pkce: { required: () => true },
        features: {
          devInteractions: { enabled: true },
          rpInitiatedLogout: { enabled: true },
          resourceIndicators: {
            enabled: true,
            defaultResource: () => RESOURCE,
            useGrantedResource: () => true,
            getResourceServerInfo: (_ctx, indicator) => {
              if (indicator !== RESOURCE) throw new Error(`unknown resource ${indicator}`);
              return { scope: RESOURCE_SCOPE, audience: RESOURCE, accessTokenTTL: 15 * 60, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
            },
          },
        },
        findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
        extraTokenClaims: (_ctx, token) => {
          const accountId = (token as { accountId?: string }).accountId;
          return { roles: accountId === undefined ? [] : (accounts[accountId] ?? []) };
        },
        ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, IdToken: 900 },
      });
      handler = provider.callback();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
