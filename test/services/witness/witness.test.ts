import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EMPTY_ROOT } from '../../../lib/audit/merkle/hash.js';
import { openCheckpoint } from '../../../lib/audit/note/tlog-checkpoint.js';
import { openNote } from '../../../lib/audit/note/open-note.js';
import { signNote } from '../../../lib/audit/note/signer.js';
import { formatCheckpoint } from '../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey } from '../../../lib/audit/note/vkey.js';
import { formatAddCheckpointBody, SIZE_CONTENT_TYPE } from '../../../lib/audit/witness-protocol.js';
import { originHash, WitnessStateStore } from '../../../services/witness/state-store.js';
import { WITNESS_TEST_CONSISTENCY } from '../../lib/audit/merkle/vectors.js';
import { WITNESS_TEST } from '../../lib/audit/note/vectors.js';
import { logsOf, startWitness, TestLog, type WitnessHarness } from '../../support/witness-harness.js';

let witness: WitnessHarness | undefined;
afterEach(async () => {
  await witness?.close();
  witness = undefined;
});

const errorCode = (text: string): string | undefined => (JSON.parse(text) as { error?: { code?: string } }).error?.code;

describe('witness (C2SP tlog-witness add-checkpoint) over HTTP with real files', () => {
  it('cosigns the transparency-dev witness test vectors: first checkpoint, then an extension with its consistency proof', async () => {
    witness = await startWitness(new Map([['monkeys', [parseVerifierKey(WITNESS_TEST.monkeysVerifierKey)]]]));
    const first = await witness.post(formatAddCheckpointBody({ oldSize: 0, proof: [], checkpoint: WITNESS_TEST.init }));
    expect(first.status).toBe(200);
    expect(first.text).toMatch(/^— witness\.test\/w1 [A-Za-z0-9+/=]+\n$/);
    const text = 'monkeys\n5\n41smjBUiAU70EtKlT6lIOIYtRTYxYXsDB+XHfcvu/BE=\n';
    const cosigned = openNote(`${text}\n${first.text}`, [witness.cosignatureVerifier]);
    expect(cosigned.verified[0]!.timestamp).toBeGreaterThan(1_700_000_000);
    const next = await witness.post(formatAddCheckpointBody({ oldSize: 5, proof: WITNESS_TEST_CONSISTENCY.proof, checkpoint: WITNESS_TEST.next }));
    expect(next.status).toBe(200);
    expect((await witness.store.read('monkeys'))?.size).toBe(8);
  });

  it('answers 409 with the latest size as text/x.tlog.size when the old size is not its latest, and 400 for a rollback below it', async () => {
    const log = new TestLog('log.test/a').append(10);
    witness = await startWitness(logsOf(log));
    expect((await witness.post(await log.body(0))).status).toBe(200);
    log.append(5);
    const stale = await witness.post(await log.body(4));
    expect(stale).toMatchObject({ status: 409, type: SIZE_CONTENT_TYPE, text: '10\n' });
    // A rollback: the log presents an older, smaller checkpoint than the witness has cosigned.
    const rollback = await witness.post(await log.body(0, 7));
    expect(rollback).toMatchObject({ status: 409, text: '10\n' });
    const rollbackClaimingLatest = await witness.post(await log.body(7, 7).then((body) => body.replace(/^old 7/, 'old 10')));
    expect(rollbackClaimingLatest.status).toBe(400);
    expect((await witness.store.read(log.origin))?.size).toBe(10);
    expect((await witness.post(await log.body(10))).status).toBe(200);
  });

  it('refuses a fork with 422: same size with another root, or a larger tree that does not extend the cosigned one', async () => {
    const log = new TestLog('log.test/b').append(10);
    witness = await startWitness(logsOf(log));
    expect((await witness.post(await log.body(0))).status).toBe(200);
    // The key holder rewrites entry 6 onwards and signs a tree of the same size.
    const fork = log.forkAt(6).append(4);
    expect(fork.tree.root(10).equals(log.tree.root(10))).toBe(false);
    const sameSize = await witness.post(formatAddCheckpointBody({ oldSize: 10, proof: [], checkpoint: await fork.checkpoint(10) }));
    expect(sameSize.status).toBe(422);
    expect(errorCode(sameSize.text)).toBe('inconsistent');
    // A larger forked tree with a proof that is valid for the fork but not from the cosigned root.
    fork.append(5);
    const larger = await witness.post(await fork.body(10));
    expect(larger.status).toBe(422);
    // A garbled proof.
    log.append(3);
    const proof = log.tree.consistencyProof(10);
    proof[0] = Buffer.alloc(32, 7);
    expect((await witness.post(formatAddCheckpointBody({ oldSize: 10, proof, checkpoint: await log.checkpoint() }))).status).toBe(422);
    expect((await witness.store.read(log.origin))?.size).toBe(10);
    // The honest extension still goes through.
    expect((await witness.post(await log.body(10))).status).toBe(200);
  });

  it('answers 404 for an unknown origin and 403 for an untrusted or invalid signature', async () => {
    const log = new TestLog('log.test/c').append(3);
    const stranger = new TestLog('log.test/c').append(3); // same origin, another key
    const unknown = new TestLog('log.test/unknown').append(3);
    witness = await startWitness(logsOf(log));
    expect((await witness.post(await unknown.body(0))).status).toBe(404);
    const untrusted = await witness.post(await stranger.body(0));
    expect(untrusted.status).toBe(403);
    expect(errorCode(untrusted.text)).toBe('untrusted_signature');
    // The trusted key's name and ID with a broken signature.
    const checkpoint = await log.checkpoint();
    // One base64 character of the signature replaced by another (never by itself: signatures are random, so the character varies).
    const broken = checkpoint.replace(/(— log\.test\/c [A-Za-z0-9+/]{10})([A-Za-z0-9+/])/, (_, keep: string, char: string) => `${keep}${char === 'A' ? 'B' : 'A'}`);
    expect(broken).not.toBe(checkpoint);
    expect((await witness.post(formatAddCheckpointBody({ oldSize: 0, proof: [], checkpoint: broken }))).status).toBe(403);
    expect(await witness.store.read(log.origin)).toBeUndefined();
  });

  it('answers 400 for malformed requests and 422 for the empty-tree rules', async () => {
    const log = new TestLog('log.test/d').append(4);
    witness = await startWitness(logsOf(log));
    const checkpoint = await log.checkpoint();
    for (const body of ['', 'old 01\n\n' + checkpoint, 'old 0\n' + checkpoint, 'new 0\n\n' + checkpoint, 'old 0\nnot base64!\n\n' + checkpoint, `old 0\n\n${checkpoint.replace('\n\n', '\n')}`]) {
      expect((await witness.post(body)).status, JSON.stringify(body.slice(0, 20))).toBe(400);
    }
    const tooLong = formatAddCheckpointBody({ oldSize: 0, proof: [], checkpoint }).replace(/^old 0\n/, `old 0\n${`${EMPTY_ROOT.toString('base64')}\n`.repeat(64)}`);
    expect((await witness.post(tooLong)).status).toBe(400);
    // Old size 0 with a proof.
    expect((await witness.post(formatAddCheckpointBody({ oldSize: 0, proof: [EMPTY_ROOT], checkpoint }))).status).toBe(422);
    // A size-0 checkpoint must carry the empty root (the signed-note layer cannot format it otherwise, so build it by hand).
    const zeroBadRoot = await signNote(`${log.origin}\n0\n${Buffer.alloc(32, 1).toString('base64')}\n`, [log.signer]);
    expect((await witness.post(formatAddCheckpointBody({ oldSize: 0, proof: [], checkpoint: zeroBadRoot }))).status).toBe(422);
    const zero = await signNote(formatCheckpoint({ origin: log.origin, size: 0, rootHash: EMPTY_ROOT, extensions: [] }), [log.signer]);
    expect((await witness.post(formatAddCheckpointBody({ oldSize: 0, proof: [], checkpoint: zero }))).status).toBe(200);
    // Any content type, or none, is accepted; an oversized body is refused.
    expect(await witness.postWithoutContentType(await log.body(0))).toBe(200);
    expect((await witness.post(await log.body(4), { 'content-type': 'application/octet-stream' })).status).toBe(200);
    expect((await witness.post(`old 0\n\n${'x'.repeat(70 * 1024)}`)).status).toBe(413);
  });

  it('serialises concurrent requests for one log: exactly one of many racing extensions wins, the rest get 409', async () => {
    const log = new TestLog('log.test/e').append(5);
    witness = await startWitness(logsOf(log));
    expect((await witness.post(await log.body(0))).status).toBe(200);
    log.append(20);
    const bodies = await Promise.all(Array.from({ length: 12 }, (_, i) => log.body(5, 6 + i)));
    const answers = await Promise.all(bodies.map((body) => witness!.post(body)));
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    expect(answers.filter((answer) => answer.status === 409)).toHaveLength(11);
    const won = 6 + answers.findIndex((answer) => answer.status === 200);
    expect((await witness.store.read(log.origin))?.size).toBe(won);
    for (const answer of answers.filter((a) => a.status === 409)) expect(answer.text).toBe(`${won}\n`);
  });

  it('serves the latest cosigned checkpoint with the log signature and its cosignature under /<origin hash>/checkpoint', async () => {
    const log = new TestLog('log.test/f').append(9);
    witness = await startWitness(logsOf(log));
    expect((await fetch(`${witness.url}/${originHash(log.origin)}/checkpoint`)).status).toBe(404);
    expect((await witness.post(await log.body(0))).status).toBe(200);
    const response = await fetch(`${witness.url}/${originHash(log.origin)}/checkpoint`);
    expect(response.status).toBe(200);
    const opened = openCheckpoint(await response.text(), [parseVerifierKey(log.signer.verifierKey), witness.cosignatureVerifier]);
    expect(opened.checkpoint.size).toBe(9);
    expect(opened.verified.map((signature) => signature.name)).toEqual([log.origin, 'witness.test/w1']);
  });

  it('keeps its state in one 0600 JSON file per log, replaced atomically, and refuses a second process on the same directory', async () => {
    const log = new TestLog('log.test/g').append(3);
    witness = await startWitness(logsOf(log));
    expect((await witness.post(await log.body(0))).status).toBe(200);
    const file = join(witness.dir, 'logs', `${originHash(log.origin)}.json`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ origin: log.origin, size: 3, root_hash: log.tree.root().toString('base64') });
    expect((await readdir(join(witness.dir, 'logs'))).filter((name) => name.includes('.tmp-'))).toEqual([]);
    // The pid file of this live process: another store on the same directory is refused.
    await writeFile(join(witness.dir, 'witness.pid'), `${process.ppid}\n`);
    await expect(WitnessStateStore.open(witness.dir)).rejects.toMatchObject({ code: 'witness_data_dir_in_use' });
    await writeFile(join(witness.dir, 'witness.pid'), `${process.pid}\n`);
    // An edited state file is reported, not trusted.
    await writeFile(file, '{"origin":"log.test/g","size":"many"}');
    const answer = await witness.post(await log.body(3));
    expect(answer.status).toBe(500);
  });
});
