import closeWithGrace from 'close-with-grace';

/**
 * A bench server process's life (sqs-server.ts, delay-proxy-server.ts): print the endpoint the
 * bench reads as the first line, then run until signalled and close on the way out.
 */
export function serveUntilSignalled(server: { endpoint: string; close(): Promise<void> }): void {
  process.stdout.write(`${server.endpoint}\n`);
  closeWithGrace({ delay: 5_000 }, () => server.close());
}
