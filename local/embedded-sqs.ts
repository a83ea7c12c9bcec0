import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequestHandler } from 'local-aws-sqs';

export const LOCAL_ACCOUNT_ID = '000000000000';

export interface RunningSqs {
  /** Endpoint for AWS_ENDPOINT_URL_SQS / `aws --endpoint-url`. */
  endpoint: string;
  queueUrl(name: string): string;
  close(): Promise<void>;
}

/**
 * An SQS-protocol server (local-aws-sqs: JSON and Query protocols) bound to loopback only.
 * Queue URLs use `localhost` so the classic http://localhost:4566/000000000000/login-queue works.
 * Port 0 picks a free port (tests).
 */
export async function startEmbeddedSqs(options: { port: number; host?: string }): Promise<RunningSqs> {
  const host = options.host ?? '127.0.0.1';
  const { service, requestHandler } = createRequestHandler({
    port: options.port,
    hostname: 'localhost',
    accountId: LOCAL_ACCOUNT_ID,
    emulateQueueCreationLifecycle: false,
  });
  const server: Server = createServer((req, res) => void requestHandler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // The emulator builds queue URLs from its configured port; with port 0 it must learn the real one.
  (service as unknown as { PORT: number }).PORT = port;
  const endpoint = `http://localhost:${port}`;
  return {
    endpoint,
    queueUrl: (name) => `${endpoint}/${LOCAL_ACCOUNT_ID}/${name}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
