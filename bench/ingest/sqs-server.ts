import { startEmbeddedSqs } from '../../local/embedded-sqs.js';

/**
 * The SQS emulator in its own process, as SQS is in production: its CPU time must not be
 * charged to the ingestor's event loop. Prints the endpoint, then runs until killed.
 */
const sqs = await startEmbeddedSqs({ port: 0 });
process.stdout.write(`${sqs.endpoint}\n`);
const shutdown = () => {
  void sqs.close().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.on('disconnect', shutdown);
