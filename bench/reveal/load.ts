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
}

async function run(load: LoadCase): Promise<LoadResult> {
  let next = 0;
  const result = await autocannon({
    url: load.url,
    method: load.method,
    headers: load.headers,
    connections: load.connections,
    duration: load.durationSeconds,
    ...(load.bodies.length === 0
      ? {}
      : {
          requests: [
            {
              setupRequest: (request) => {
                request.body = load.bodies[next % load.bodies.length] ?? '';
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
  };
}

process.on('message', (message: LoadCase) => {
  run(message).then(
    (result) => process.send?.({ ok: true, result }),
    (error: unknown) => process.send?.({ ok: false, error: String(error) }),
  );
});
process.send?.({ ready: true });
