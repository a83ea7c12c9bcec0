/**
 * Load generator, run in a child process so it does not share the server's event loop:
 * receives one case over IPC, runs autocannon, sends the summary back.
 */
import autocannon from 'autocannon';

export interface LoadCase {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Request bodies, used round-robin (empty for GET). */
  bodies: string[];
  /** Header sets used round-robin instead of `headers` (e.g. no credentials, then a garbage token). */
  headerSets?: Record<string, string>[];
  connections: number;
  durationSeconds: number;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Responses per HTTP status. */
  statuses: Record<string, number>;
}

async function run(load: LoadCase): Promise<LoadResult> {
  let next = 0;
  const result = await autocannon({
    url: load.url,
    method: load.method,
    headers: load.headers,
    connections: load.connections,
    duration: load.durationSeconds,
    ...(load.bodies.length === 0 && load.headerSets === undefined
      ? {}
      : {
          requests: [
            {
              setupRequest: (request) => {
                if (load.bodies.length > 0) request.body = load.bodies[next % load.bodies.length] ?? '';
                if (load.headerSets !== undefined) request.headers = { ...(load.headerSets[next % load.headerSets.length] ?? {}) };
                next += 1;
                return request;
              },
            },
          ],
        }),
  });
  return {
    requests: result.requests.total,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, stats]): [string, number] => [status, stats.count ?? 0])),
  };
}

process.on('message', (message: LoadCase) => {
  run(message).then(
    (result) => process.send?.({ ok: true, result }),
    (error: unknown) => process.send?.({ ok: false, error: String(error) }),
  );
});
process.send?.({ ready: true });
