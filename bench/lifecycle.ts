/**
 * npm run bench:lifecycle [-- --rows 10000000 --messages 50000 --batch 1000 --persons 50]
 * (also `npm run bench:ingest -- --partitioning --rows N`). See bench/lifecycle/run.ts.
 */
import { parseArgs } from 'node:util';
import { runLifecycleBench } from './lifecycle/run.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000000' },
    messages: { type: 'string', default: '50000' },
    batch: { type: 'string', default: '1000' },
    persons: { type: 'string', default: '50' },
  },
});

await runLifecycleBench({
  rows: Number(args.rows),
  messages: Number(args.messages),
  batch: Number(args.batch),
  persons: Number(args.persons),
  log: (line) => process.stderr.write(`${line}\n`),
});
