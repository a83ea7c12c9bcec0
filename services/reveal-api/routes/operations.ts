import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { KeyProvider } from '../../../lib/keys/key-provider.js';
import { checkReadiness, readinessSchema, readinessStatus } from '../../../lib/health/readiness.js';
import type { RouteContext } from './context.js';

/** Liveness, readiness and metrics: unauthenticated, unaudited, no PII. */
export function operationsRoutes(context: RouteContext, keys: KeyProvider) {
  return async function register(app: FastifyInstance): Promise<void> {
    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.get('/healthz', { schema: { tags: ['operations'], response: { 200: z.object({ status: z.literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

    typed.get('/readyz', { schema: { tags: ['operations'], response: { 200: readinessSchema, 503: readinessSchema } } }, async (request, reply) => {
      const readiness = await checkReadiness(
        {
          database: () => context.pool.query('SELECT 1').then(() => undefined),
          keyProvider: () => keys.check(),
          // A fresh database has no token key until the ingestor creates it: reveal still works then.
          tokenKey: () =>
            context.tokenizer.get().then(
              (tokenizer) => `v${tokenizer.keyVersion}`,
              () => 'none yet (the ingestor creates v1)',
            ),
        },
        (name, error) => request.log.warn({ err: error }, `readiness: ${name} unavailable`),
      );
      return reply.code(readinessStatus(readiness)).send(readiness);
    });

    app.get('/metrics', { schema: { tags: ['operations'], hide: false } }, async (_request, reply) => {
      return reply.header('content-type', context.metrics.registry.contentType).send(await context.metrics.registry.metrics());
    });
  };
}
