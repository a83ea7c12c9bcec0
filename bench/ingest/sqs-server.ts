import { serveUntilSignalled } from './serve.js';
import { startEmbeddedSqs } from '../../local/embedded-sqs.js';
import { startLeanSqs } from './lean-sqs.js';

/**
 * The SQS server in its own process, as SQS is in production: its CPU time must not be
 * charged to the ingestor's event loop. Argument: `lean` (bench/ingest/lean-sqs.ts, the default)
 * or `local-aws-sqs` (the emulator the tests and npm start use). Prints the endpoint, then runs
 * until killed.
 */
const kind = process.argv[2] ?? 'lean';
if (kind !== 'lean' && kind !== 'local-aws-sqs') throw new Error(`--sqs: ${kind} is neither lean nor local-aws-sqs`);
const sqs = kind === 'lean' ? await startLeanSqs() : await startEmbeddedSqs({ port: 0 });
serveUntilSignalled(sqs);
