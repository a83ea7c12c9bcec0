import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

/**
 * The ingestor's SQS client: the SDK's default HTTP agent allows 50 sockets per host, fewer than
 * the receives the concurrency limit may keep in flight plus the deletes beside them; past that,
 * requests would queue inside the agent and the latency the limit follows would be the agent's.
 * `cacheMiddleware` resolves each command's middleware stack once instead of on every call (a
 * quarter of the client's CPU per call, measured on the emulator): calls without per-call options
 * (the deletes) use it. Nothing adds middleware to this client after its first call.
 */
export function createIngestorSqsClient(options: { region: string; endpoint?: string | undefined; maxPollers: number; credentials?: SQSClientConfig['credentials'] }): SQSClient {
  const maxSockets = options.maxPollers * 2 + 8;
  return new SQSClient({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    requestHandler: { httpAgent: { maxSockets }, httpsAgent: { maxSockets } },
    cacheMiddleware: true,
  });
}
