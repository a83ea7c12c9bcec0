import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { KeyProvider } from '../../../lib/keys/key-provider.js';
import { checkReadiness, readinessSchema, readinessStatus } from '../../../lib/health/readiness.js';
import type { CheckpointerState } from '../audit/checkpoints/checkpointer.js';
import type { RouteContext } from './context.js';

/**
 * Not ready while the newest checkpoint round REFUSED to sign (the stored log does not extend
 * what was published and witnessed, or rows do not match their leaves): like an audit device
 * that cannot write, the replica stops taking traffic until an operator looks (the log and
 * tokenvault_audit_checkpoint_failures_total say why). Witnesses that did not cosign are a detail.
 */
function checkpointReadiness(state: CheckpointerState): { ok: boolean; error?: string; detail?: string } {
  if (state.refused !== undefined) {
    return { ok: false, error: `checkpoint_refused (${state.refused.failure})`, detail: `refusing to sign since ${state.refused.since}: see the reveal-api log` };
  }
  const written = state.lastWritten === undefined ? 'no checkpoint written by this replica yet' : `checkpoint ${state.lastWritten.index} (${state.lastWritten.size} rows) at ${state.lastWritten.time}`;
  const missing = state.witnessesMissing.length === 0 ? '' : `; not cosigned by ${state.witnessesMissing.join(', ')}`;
  return { ok: true, detail: `${written}${missing}` };
}

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
          ...(context.checkpoints === undefined ? {} : { auditCheckpoints: async () => checkpointReadiness(context.checkpoints!) }),
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
