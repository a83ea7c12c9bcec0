import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

/** The SDK's logger step, by the name it registers under (@aws-sdk/core loggerMiddlewareOptions). */
const SDK_LOGGER_MIDDLEWARE = 'loggerMiddleware';

/**
 * The ingestor's SQS client: the SDK's default HTTP agent allows 50 sockets per host, fewer than
 * the receives the concurrency limit may keep in flight plus the deletes beside them; past that,
 * requests would queue inside the agent and the latency the limit follows would be the agent's.
 * `cacheMiddleware` resolves each command's middleware stack once instead of on every call (a
 * quarter of the client's CPU per call, measured on the emulator): calls without per-call options
 * (the deletes) use it. Nothing adds middleware to this client after its first call.
 *
 * The SDK's logger step is removed: with no logger configured it still builds a copy of every
 * call's input and output, walked field by field to mask sensitive members, and hands it to a
 * no-op — for a receive, ten message bodies a call: 8–15 % of the ingestor's CPU per message on
 * the full path (bench:ingest). Nothing hands this client a logger, so no line is lost: the
 * ingestor logs failed receives and deletes itself (worker.ts), and message bodies (PII) never
 * reach a log.
 */
export function createIngestorSqsClient(options: { region: string; endpoint?: string | undefined; maxPollers: number; credentials?: SQSClientConfig['credentials'] }): SQSClient {
  const maxSockets = options.maxPollers * 2 + 8;
  const client = new SQSClient({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    requestHandler: { httpAgent: { maxSockets }, httpsAgent: { maxSockets } },
    cacheMiddleware: true,
  });
  client.middlewareStack.remove(SDK_LOGGER_MIDDLEWARE);
  return client;
}
