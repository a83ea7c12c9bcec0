import { z } from 'zod';

/** One dependency's state. `error` says what failed (a code, never a value); `detail` is informational. */
export const checkResultSchema = z.object({ ok: z.boolean(), error: z.string().optional(), detail: z.string().optional() });
export type CheckResult = z.infer<typeof checkResultSchema>;

/** The /readyz body of every service: 200 when status is ready, 503 otherwise. */
export const readinessSchema = z
  .object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.string(), checkResultSchema) })
  .describe('ready when every check is ok; each check names what failed');
export type Readiness = z.infer<typeof readinessSchema>;

/**
 * A named check: resolves (optionally with a detail, e.g. "v2") when the dependency can do
 * its job, rejects or resolves `{ ok: false }` otherwise. Checks run concurrently.
 */
export type Check = () => Promise<string | undefined | void | CheckResult>;

export async function checkReadiness(checks: Record<string, Check>, onFailure?: (name: string, error: unknown) => void): Promise<Readiness> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      try {
        const outcome = await check();
        if (typeof outcome === 'object' && outcome !== null) return [name, outcome];
        return [name, typeof outcome === 'string' ? { ok: true, detail: outcome } : { ok: true }];
      } catch (error) {
        onFailure?.(name, error);
        return [name, { ok: false, error: describeFailure(error) }];
      }
    }),
  );
  const results = Object.fromEntries(entries);
  return { status: entries.every(([, result]) => result.ok) ? 'ready' : 'not_ready', checks: results };
}

export function readinessStatus(readiness: Readiness): 200 | 503 {
  return readiness.status === 'ready' ? 200 : 503;
}

/**
 * What an unauthenticated probe may learn of a failure: the error's class and code
 * (ECONNREFUSED, 57P01, AccessDeniedException), not its message, which can name hosts,
 * users or key ids.
 */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return 'unavailable';
  const code = (error as { code?: unknown }).code;
  const name = error.name === 'Error' ? 'unavailable' : error.name;
  return typeof code === 'string' && code !== '' ? `${name} (${code})` : name;
}
