import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDevIdentityProvider } from '../../local/dev-identity-provider/provider.js';

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
 * A real OpenID provider (the `oidc-provider` package, through local/dev-identity-provider) on
 * loopback: authorization code with PKCE for a public client, JWT access tokens for the
 * reveal-api resource carrying a `roles` claim, and its development login page where any login
 * name signs in. `accounts` maps login names to roles.
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

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    resource: RESOURCE,
    clientId: CONSOLE_CLIENT_ID,
    async configure(consoleUrl) {
      // The same provider docker compose runs (service idp), with this test's accounts.
      const provider = await createDevIdentityProvider({
        issuer,
        clientId: CONSOLE_CLIENT_ID,
        redirectUris: [consoleUrl],
        resource: RESOURCE,
        resourceScope: RESOURCE_SCOPE,
        rolesOf: (login) => accounts[login] ?? [],
      });
      handler = (request, response) => provider.handle(request, response);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
