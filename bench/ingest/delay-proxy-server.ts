import { serveUntilSignalled } from './serve.js';
import { startDelayProxy } from '../../local/delay-proxy.js';

/**
 * The delaying proxy in its own process: it stands for the network between the ingestor and SQS,
 * whose cost in production is not the ingestor's CPU. Run inside the bench's process, every
 * chunk it holds and forwards was charged to the ingestor's event loop. Arguments: the SQS
 * endpoint and the round trip in milliseconds. Prints its endpoint, then runs until killed.
 */
const [target, rtt] = process.argv.slice(2);
if (target === undefined || rtt === undefined) throw new Error('usage: delay-proxy-server.ts <endpoint> <rtt-ms>');
const proxy = await startDelayProxy(target, Number(rtt));
serveUntilSignalled(proxy);
