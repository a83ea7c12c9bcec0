import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CONSOLE_PREFIX } from './console.js';

const index = z.object({
  service: z.literal('tokenvault reveal-api'),
  version: z.string(),
  console: z.string().nullable().describe('The web console; null when CONSOLE_ENABLED=false'),
  docs: z.string().describe('OpenAPI documentation (Swagger UI)'),
  openapi: z.string().describe('The OpenAPI document as JSON'),
  health: z.string(),
  ready: z.string(),
  metrics: z.string(),
});

/**
 * `/`, the address `npm start` prints: a browser goes on to the console, anything else gets a
 * small index of where things are. Unauthenticated and unaudited, like /healthz.
 */
export function rootRoutes(options: { consoleEnabled: boolean; version: string }) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.withTypeProvider<ZodTypeProvider>().get('/', {
      schema: {
        summary: 'Where things are: the console, the API documentation, health and metrics',
        description: 'A browser (Accept: text/html) is redirected to the web console.',
        tags: ['operations'],
        response: { 200: index, 302: z.null().describe('to the web console') },
      },
      handler: async (request, reply) => {
        if (options.consoleEnabled && prefersHtml(request.headers.accept)) return reply.redirect(CONSOLE_PREFIX, 302);
        return {
          service: 'tokenvault reveal-api' as const,
          version: options.version,
          console: options.consoleEnabled ? CONSOLE_PREFIX : null,
          docs: '/docs',
          openapi: '/docs/json',
          health: '/healthz',
          ready: '/readyz',
          metrics: '/metrics',
        };
      },
    });
  };
}

/** text/html listed before (or without) application/json: what browsers send for a page. */
function prefersHtml(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const types = accept.split(',').map((part) => part.split(';')[0]?.trim().toLowerCase() ?? '');
  const html = types.indexOf('text/html');
  const json = types.indexOf('application/json');
  return html !== -1 && (json === -1 || html < json);
}
