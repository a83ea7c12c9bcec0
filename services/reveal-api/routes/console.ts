import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { mintLocalToken, type LocalSigningKey } from '../auth/local-signing-key.js';
import type { ConsoleConfig } from '../config.js';
import { errorBody } from '../http/errors.js';
import type { RouteContext } from './context.js';
import { errorResponses } from './schemas.js';

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
  oidc: z.object({ issuer: z.string(), clientId: z.string(), scope: z.string(), resource: z.string().nullable() }).nullable(),
  localSignIn: z.object({ roles: z.array(z.string()) }).nullable(),
  revealClearSeconds: z.number().int(),
});

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
      handler: async () => ({
        oidc: config.oidc === undefined ? null : { ...config.oidc, resource: config.oidc.resource ?? null },
        localSignIn: config.localSignIn && localSigningKey !== undefined ? { roles: context.policy.roles } : null,
        revealClearSeconds: config.revealClearSeconds,
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
          response: { 200: z.object({ accessToken: z.string(), expiresAt: z.string() }), ...errorResponses },
        },
        handler: async (request) => {
          const sub = request.body.name ?? `local-${request.body.role}`;
          const accessToken = await mintLocalToken(localSigningKey, { sub, roles: [request.body.role], ttl: LOCAL_SIGN_IN_TTL_SECONDS });
          request.log.warn({ sub, role: request.body.role }, 'local sign-in (local stack only)');
          return { accessToken, expiresAt: new Date(Date.now() + LOCAL_SIGN_IN_TTL_SECONDS * 1000).toISOString() };
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
