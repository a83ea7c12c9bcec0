import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { KeyProvider } from '../../../lib/keys/key-provider.js';
import type { RouteContext } from './context.js';

const readiness = z.object({
  status: z.enum(['ready', 'not_ready']),
  checks: z.object({ database: z.string(), keyProvider: z.string(), tokenKey: z.string() }),
});

/** Liveness, readiness and metrics: unauthenticated, unaudited, no PII. */
export function operationsRoutes(context: RouteContext, keys: KeyProvider) {
  return async function register(app: FastifyInstance): Promise<void> {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.get('/healthz', { schema: { tags: ['operations'], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

    typed.get('/readyz', { schema: { tags: ['operations'], response: { 200: readiness, 503: readiness } } }, async (request, reply) => {
      const [database, keyProvider, tokenKey] = await Promise.all([
        context.pool.query('SELECT 1').then(
          () => 'ok',
          (error: unknown) => failed(request, 'database', error),
        ),
        keys.check().then(
          () => 'ok',
          (error: unknown) => failed(request, 'key provider', error),
        ),
        // A fresh database has no token key until the ingestor creates it: reveal still works then.
        context.tokenizer.get().then(
          (tokenizer) => `v${tokenizer.keyVersion}`,
          () => 'absent',
        ),
      ]);
      const ready = database === 'ok' && keyProvider === 'ok';
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { database, keyProvider, tokenKey } });
    });

    app.get('/metrics', { schema: { tags: ['operations'], hide: false } }, async (_request, reply) => {
      return reply.header('content-type', context.metrics.registry.contentType).send(await context.metrics.registry.metrics());
    });
  };
}

function failed(request: { log: { warn: (object: object, message: string) => void } }, what: string, error: unknown): string {
  request.log.warn({ err: error }, `readiness: ${what} unavailable`);
  return 'unavailable';
}
