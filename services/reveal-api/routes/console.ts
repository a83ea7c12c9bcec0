import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mintLocalToken, type LocalSigningKey } from '../../../lib/auth/local-signing-key.js';
import type { ConsoleConfig } from '../config.js';
import { errorBody, HttpError } from '../http/errors.js';
import { isLoopbackAddress, isLoopbackHost } from '../../../lib/net/loopback.js';
import type { RouteContext } from './context.js';
import { errorResponses, errorResponseSchema } from './schemas.js';

export const CONSOLE_PREFIX = '/console/';
/** How long a local sign-in lasts: long enough for a session, short enough to show expiry. */
const LOCAL_SIGN_IN_TTL_SECONDS = 3600;

export interface ConsoleOptions {
  config: ConsoleConfig;
  /** Present only in the local stack, and only then is POST /console/local-sign-in registered. */
  localSigningKey: LocalSigningKey | undefined;
}

/**
 * The page's own security headers. No inline script or style anywhere (the build emits
 * files only); the browser may talk to this origin and to the identity provider's token
 * endpoint, nothing else; no framing; no referrer (URLs may carry an authorization code).
 */
export function consoleSecurityHeaders(config: ConsoleConfig): Record<string, string> {
  const connect = ["'self'", ...(config.oidc === undefined ? [] : [new URL(config.oidc.issuer).origin])];
  return {
    'content-security-policy': [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "font-src 'self'",
      `connect-src ${connect.join(' ')}`,
      "base-uri 'none'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
  };
}

const consoleSettings = z.object({
  oidc: z.object({ issuer: z.string(), client_id: z.string(), scope: z.string(), resource: z.string().nullable() }).nullable(),
  local_sign_in: z
    .object({ roles: z.array(z.string()) })
    .nullable()
    .describe('Local stack only, and only to requests that arrive on a loopback listener'),
  reveal_clear_seconds: z.number().int(),
});

/**
 * Why a request may not use the local sign-in, or undefined when it may: it must arrive on a
 * loopback listener from a loopback peer, not through a proxy (which would relay the network),
 * and name a loopback host (a DNS-rebinding page names its own).
 */
export function notLocalBecause(request: FastifyRequest): string | undefined {
  const { localAddress, remoteAddress } = request.socket;
  // No local address: not a network connection at all (a unix socket, or an in-process inject).
  if (localAddress !== undefined) {
    if (!isLoopbackAddress(localAddress)) return `it arrived on ${localAddress}, not a loopback listener`;
    if (!isLoopbackAddress(remoteAddress)) return 'it came from another machine';
  }
  if (['forwarded', 'x-forwarded-for', 'x-real-ip'].some((name) => request.headers[name] !== undefined)) return 'it came through a proxy';
  if (!isLoopbackHost(hostOf(request.headers.host))) return 'its Host header names something other than this machine';
  return undefined;
}

function hostOf(header: string | undefined): string {
  if (header === undefined) return '';
  try {
    return new URL(`http://${header}`).hostname;
  } catch {
    return '';
  }
}

/**
 * The web console: the built single-page app under /console/, the settings it needs to sign
 * in (GET /console/settings.json) and, in the local stack only, a sign-in that mints a token for a chosen role.
 */
export function consoleRoutes(context: RouteContext, options: ConsoleOptions) {
  const { config, localSigningKey } = options;
  const headers = consoleSecurityHeaders(config);
  const built = existsSync(join(config.dir, 'index.html'));

  return async function register(app: FastifyInstance): Promise<void> {
    app.addHook('onSend', async (_request, reply) => {
      reply.headers(headers);
    });

    app.get('/console', { schema: { hide: true } }, (_request, reply) => reply.redirect(CONSOLE_PREFIX, 302));

    app.withTypeProvider<ZodTypeProvider>().get('/console/settings.json', {
      schema: { summary: 'How the web console signs in', tags: ['console'], response: { 200: consoleSettings } },
      handler: async (request) => ({
        oidc:
          config.oidc === undefined
            ? null
            : { issuer: config.oidc.issuer, client_id: config.oidc.clientId, scope: config.oidc.scope, resource: config.oidc.resource ?? null },
        local_sign_in: config.localSignIn && localSigningKey !== undefined && notLocalBecause(request) === undefined ? { roles: context.policy.roles } : null,
        reveal_clear_seconds: config.revealClearSeconds,
      }),
    });

    if (config.localSignIn && localSigningKey !== undefined) {
      const roles = context.policy.roles;
      app.withTypeProvider<ZodTypeProvider>().post('/console/local-sign-in', {
        schema: {
          summary: 'LOCAL STACK ONLY: a token for a chosen role, without an identity provider',
          tags: ['console'],
          body: z.object({
            role: z.string().refine((role) => roles.includes(role), { message: `expected one of ${roles.join(', ')}` }),
            name: z.string().trim().regex(/^[A-Za-z0-9._-]{1,64}$/, { message: 'letters, digits, dot, dash and underscore' }).optional(),
          }),
          response: { 200: z.object({ access_token: z.string(), expires_at: z.string() }), 404: errorResponseSchema, ...errorResponses },
        },
        handler: async (request) => {
          // The listener is loopback (config); this holds even if the app is made to listen elsewhere.
          const refused = notLocalBecause(request);
          if (refused !== undefined) {
            request.log.warn({ reason: refused }, 'local sign-in refused: not a request on a loopback listener');
            throw new HttpError(404, 'not_found', `the local sign-in exists only on a loopback listener, and this request does not qualify: ${refused}`);
          }
          const sub = request.body.name ?? `local-${request.body.role}`;
          const accessToken = await mintLocalToken(localSigningKey, { sub, roles: [request.body.role], ttl: LOCAL_SIGN_IN_TTL_SECONDS });
          request.log.warn({ sub, role: request.body.role }, 'local sign-in (local stack only)');
          return { access_token: accessToken, expires_at: new Date(Date.now() + LOCAL_SIGN_IN_TTL_SECONDS * 1000).toISOString() };
        },
      });
    }

    if (!built) {
      app.get('/console/*', { schema: { hide: true } }, (_request, reply) => notBuilt(reply, config.dir));
      app.get(CONSOLE_PREFIX, { schema: { hide: true } }, (_request, reply) => notBuilt(reply, config.dir));
      return;
    }
    await app.register(fastifyStatic, {
      root: config.dir,
      prefix: CONSOLE_PREFIX,
      // One route per built file; everything else under /console/ is a view of the app.
      wildcard: false,
      index: ['index.html'],
      cacheControl: false,
      etag: false,
      lastModified: false,
      schemaHide: true,
    });
    app.get('/console/*', { schema: { hide: true } }, (request, reply) => {
      // A path with an extension is a missing file, not a view.
      if (/\.[A-Za-z0-9]+$/.test(request.url.split('?')[0] ?? '')) return reply.code(404).send(errorBody('not_found', 'no such file'));
      return reply.type('text/html; charset=utf-8').sendFile('index.html');
    });
  };
}

function notBuilt(reply: FastifyReply, dir: string) {
  return reply.code(503).send(errorBody('console_not_built', `the web console is not built (no ${join(dir, 'index.html')}): run npm run build`));
}
