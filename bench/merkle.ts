/**
 * npm run bench:merkle [-- --leaves 200000 --proofs 20000]
 *
 * The transparency-log tree in one process, no database: what tree maintenance costs per audit
 * row compared with the hash chain that already runs per row (the baseline: chainHash, one
 * SHA-256 of the canonical row), and how many proofs per second a replica can serve and an
 * auditor can check. Leaves are real audit rows (canonical bytes as the chain hashes them).
 * Proofs come from the node store through the async NodeStore interface, as PostgreSQL will serve
 * them (minus the query). Same-run ratios are what matter; absolute figures depend on the load.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { chainHash, type AuditContent } from '../lib/audit/chain.js';
import { auditLeaf } from '../lib/audit/merkle/audit-leaf.js';
import { CompactRange } from '../lib/audit/merkle/compact-range.js';
import { leafHash } from '../lib/audit/merkle/hash.js';
import { consistencyProof, inclusionProof, MemoryNodeStore, rootAt } from '../lib/audit/merkle/node-store.js';
import { verifyConsistency, verifyInclusion } from '../lib/audit/merkle/verify.js';
import { printTable } from './table.js';

const { values: args } = parseArgs({ options: { leaves: { type: 'string', default: '200000' }, proofs: { type: 'string', default: '20000' } } });
const leafCount = Number(args.leaves);
const proofCount = Number(args.proofs);

function rows(count: number): AuditContent[] {
  const out: AuditContent[] = [];
  let prevHash: Buffer | null = null;
  for (let seq = 1; seq <= count; seq += 1) {
    const row: AuditContent = {
      seq, occurredAt: new Date(Date.UTC(2026, 0, 1) + seq).toISOString(), action: 'reveal', actor: `investigator-${seq % 50}`, roles: ['investigator'],
      clientAddress: '10.0.0.7', requestId: `req-${seq}`, purpose: 'fraud case 4711', ticket: 'FRAUD-1', tokens: [`ip_v1_${String(seq).padStart(43, 'A')}`],
      fieldCounts: { ip: 1 }, outcome: 'allowed', reason: null, prevHash,
    };
    prevHash = chainHash(row);
    out.push(row);
  }
  return out;
}

function timed(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function timedAsync(run: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function main(): Promise<void> {
  process.stderr.write(`building ${leafCount} audit rows…\n`);
  const auditRows = rows(leafCount);
  const leaves = auditRows.map(auditLeaf);
  const figures: { name: string; count: number; seconds: number }[] = [];

  figures.push({ name: 'baseline: chainHash per row (today)', count: leafCount, seconds: timed(() => auditRows.forEach((row) => chainHash(row))) });
  const range = CompactRange.empty();
  const store = new MemoryNodeStore();
  figures.push({ name: 'append: leaf hash + compact range + nodes to save', count: leafCount, seconds: timed(() => leaves.forEach((leaf) => store.put(range.append(leafHash(leaf))))) });
  const size = range.size;
  figures.push({ name: 'root of the current size (compact range)', count: 10_000, seconds: timed(() => { for (let i = 0; i < 10_000; i += 1) range.root(); }) });

  const indices = Array.from({ length: proofCount }, (_, i) => Math.floor((i * 7919) % size));
  const root = range.root();
  const proofs: Buffer[][] = [];
  figures.push({ name: 'inclusion proof from the node store', count: proofCount, seconds: await timedAsync(async () => { for (const index of indices) proofs.push(await inclusionProof(store, index, size)); }) });
  figures.push({
    name: 'inclusion proof verification (RFC 9162 §2.1.3.2)',
    count: proofCount,
    seconds: timed(() => indices.forEach((index, i) => { if (!verifyInclusion(index, size, leafHash(leaves[index]!), proofs[i]!, root)) throw new Error('bad proof'); })),
  });
  const olds = Array.from({ length: proofCount }, (_, i) => 1 + Math.floor((i * 104_729) % (size - 1)));
  const oldRoots = await Promise.all(olds.map((old) => rootAt(store, old)));
  const consistency: Buffer[][] = [];
  figures.push({ name: 'consistency proof from the node store', count: proofCount, seconds: await timedAsync(async () => { for (const old of olds) consistency.push(await consistencyProof(store, old, size)); }) });
  figures.push({
    name: 'consistency proof verification (§2.1.4.2)',
    count: proofCount,
    seconds: timed(() => olds.forEach((old, i) => { if (!verifyConsistency(old, size, oldRoots[i]!, root, consistency[i]!)) throw new Error('bad proof'); })),
  });

  const baseline = figures[0]!;
  const perSecond = (f: { count: number; seconds: number }) => f.count / f.seconds;
  printTable(
    ['operation', 'count', 'per second', 'µs each', 'vs baseline (time per op)'],
    figures.map((f) => [f.name, String(f.count), Math.round(perSecond(f)).toLocaleString('en-US'), ((f.seconds / f.count) * 1e6).toFixed(2), `${(perSecond(baseline) / perSecond(f)).toFixed(2)}×`]),
  );
  const proofBytes = proofs.reduce((sum, proof) => sum + proof.length * 32, 0) / proofs.length;
  console.log(`\ntree size ${size}; nodes stored ${store.nodeCount} (${(store.nodeCount / size).toFixed(2)} per leaf); mean inclusion proof ${proofBytes.toFixed(0)} bytes`);
  console.log(`load average ${loadavg().map((value) => value.toFixed(2)).join(' ')} (not a quiet machine unless it says ~0)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
