import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';

/**
 * A development OpenID provider (the `oidc-provider` package) for the console's real sign-in
 * path without a company identity provider: authorization code with PKCE for one public client,
 * JWT access tokens for the reveal-api (RFC 8707 resource indicator) carrying a `roles` claim,
 * and oidc-provider's own development login page, where any login name signs in with any
 * password. docker compose runs it (service `idp`); the browser tests drive it. NEVER in production.
 */
export interface DevIdentityProviderOptions {
  /** The issuer identifier: the address browsers use, and the `iss` of every token. */
  issuer: string;
  clientId: string;
  /** The console's address(es): redirect and post-logout redirect URIs of the client. */
  redirectUris: string[];
  /** The reveal-api's resource indicator, the `aud` of access tokens (its JWT_AUDIENCE). */
  resource: string;
  /** The scope that grants the resource. */
  resourceScope: string;
  /** The roles a login name gets in its tokens. */
  rolesOf: (login: string) => string[];
  /** ES256 private JWK with `kid`; generated when absent (tokens then do not survive a restart). */
  signingJwk?: JWK;
}

export interface DevIdentityProvider {
  issuer: string;
  /** Where the reveal-api fetches the public keys (JWT_JWKS_URL), from the issuer's address. */
  jwksUrl: string;
  /** The provider's requests; also answers POST /dev/token and GET /healthz. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** An access token for `sub` with `roles`, as the code flow would issue it (curl, scripts). */
  mintAccessToken(sub: string, roles: string[], ttlSeconds?: number): Promise<string>;
}

export async function createDevIdentityProvider(options: DevIdentityProviderOptions): Promise<DevIdentityProvider> {
  const signingJwk = options.signingJwk ?? (await generateSigningJwk());
  const privateKey = await importJWK(signingJwk, 'ES256');
  const provider = new Provider(options.issuer, {
    clients: [
      {
        client_id: options.clientId,
        token_endpoint_auth_method: 'none',
        application_type: 'web',
        id_token_signed_response_alg: 'ES256',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: options.redirectUris,
        post_logout_redirect_uris: options.redirectUris,
      },
    ],
    jwks: { keys: [signingJwk] },
    scopes: ['openid', options.resourceScope],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== options.resource) throw new Error(`unknown resource ${indicator}`);
          return { scope: options.resourceScope, audience: options.resource, accessTokenTTL: 15 * 60, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    extraTokenClaims: (_ctx, token) => {
      const accountId = (token as { accountId?: string }).accountId;
      return { roles: accountId === undefined ? [] : options.rolesOf(accountId) };
    },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, IdToken: 900 },
  });
  const callback = provider.callback();

  const mintAccessToken = (sub: string, roles: string[], ttlSeconds = 3600) =>
    new SignJWT({ roles, scope: options.resourceScope })
      .setProtectedHeader({ alg: 'ES256', kid: signingJwk.kid, typ: 'at+jwt' })
      .setIssuer(options.issuer)
      .setAudience(options.resource)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(privateKey);

  return {
    issuer: options.issuer,
    jwksUrl: `${options.issuer}/jwks`,
    mintAccessToken,
    handle(request, response) {
      const path = (request.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      }
      if (path === '/dev/token' && request.method === 'POST') {
        void devToken(request, response, options.rolesOf, mintAccessToken);
        return;
      }
      callback(request, response);
    },
  };
}

/**
 * POST /dev/token with `sub` and `roles` (form or JSON): an access token as text, for curl in
 * the compose stack (what `npm run token` is to npm start). Roles default to those of the login.
 */
async function devToken(
  request: IncomingMessage,
  response: ServerResponse,
  rolesOf: (login: string) => string[],
  mint: (sub: string, roles: string[]) => Promise<string>,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const fields: Record<string, unknown> = (request.headers['content-type'] ?? '').includes('json')
    ? (() => {
        try {
          return JSON.parse(text) as Record<string, unknown>;
        } catch {
          return {};
        }
      })()
    : Object.fromEntries(new URLSearchParams(text));
  const sub = typeof fields.sub === 'string' ? fields.sub.trim() : '';
  if (!/^[A-Za-z0-9._+@-]{1,64}$/.test(sub)) {
    response.writeHead(400, { 'content-type': 'text/plain' }).end('give sub (a login name), e.g. -d sub=alice -d roles=investigator\n');
    return;
  }
  const roles = Array.isArray(fields.roles)
    ? fields.roles.filter((role): role is string => typeof role === 'string')
    : typeof fields.roles === 'string'
      ? fields.roles.split(',').map((role) => role.trim()).filter((role) => role.length > 0)
      : rolesOf(sub);
  response.writeHead(200, { 'content-type': 'text/plain' }).end(`${await mint(sub, roles)}\n`);
}

async function generateSigningJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg: 'ES256', use: 'sig', kid: `dev-${Date.now().toString(36)}` };
}

/** Listens on host:port (0: a free port) and serves the provider. */
export async function listenDevIdentityProvider(provider: Pick<DevIdentityProvider, 'handle'>, host: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => provider.handle(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
