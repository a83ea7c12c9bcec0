import { createServer } from 'node:net';
import type { ListenTarget } from '../lib/net/listen-errors.js';

/**
 * The targets whose port another program holds right now (bind, then release at once), so
 * `npm start` names every busy setting before starting anything. A port taken between this
 * check and the real listen still gets the same message from describeListenFailure.
 */
export async function busyPorts(targets: readonly ListenTarget[]): Promise<ListenTarget[]> {
  const busy: ListenTarget[] = [];
  for (const target of targets) {
    if (target.port === 0) continue;
    const code = await tryListen(target.host, target.port);
    if (code === 'EADDRINUSE') busy.push(target);
  }
  return busy;
}

function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
