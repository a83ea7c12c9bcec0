import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';

/**
 * The ingestor's SQS client: the SDK's default HTTP agent allows 50 sockets per host, fewer than
 * the receives the concurrency limit may keep in flight plus the deletes beside them; past that,
 * requests would queue inside the agent and the latency the limit follows would be the agent's.
 */
export function createIngestorSqsClient(options: { region: string; endpoint?: string | undefined; maxPollers: number; credentials?: SQSClientConfig['credentials'] }): SQSClient {
  const maxSockets = options.maxPollers * 2 + 8;
  return new SQSClient({
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    requestHandler: { httpAgent: { maxSockets }, httpsAgent: { maxSockets } },
  });
}
