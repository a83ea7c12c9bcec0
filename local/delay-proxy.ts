import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy that holds every chunk for `rttMs / 2` in each direction, so each request and
 * response pair through it costs one more round trip of `rttMs`: what an in-region SQS call adds
 * (10–20 ms) compared with the emulator on loopback. Used by bench:ingest (--rtt-ms) and the
 * ingestor's tests; not part of any service. Order within a direction is kept (equal
 * delays: timers fire in the order they were set). Connections are set up without delay (the SDK
 * keeps them alive, so that cost would only show once per socket).
 */
export interface DelayProxy {
  endpoint: string;
  close(): Promise<void>;
}

export async function startDelayProxy(target: string, rttMs: number): Promise<DelayProxy> {
  const upstream = new URL(target);
  const oneWayMs = rttMs / 2;
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (oneWayMs <= 0) {
        to.write(chunk);
        return;
      }
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, oneWayMs);
    });
    from.on('end', () => setTimeout(() => to.end(), oneWayMs));
  };
  const server = createServer((client) => {
    const remote = connect(Number(upstream.port), upstream.hostname === 'localhost' ? '127.0.0.1' : upstream.hostname);
    for (const socket of [client, remote]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.on('close', () => remote.destroy());
    remote.on('close', () => client.destroy());
    forward(client, remote);
    forward(remote, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
