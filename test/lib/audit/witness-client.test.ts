import { afterEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey } from '../../../lib/audit/note/vkey.js';
import { submitCheckpoint, WitnessError, type WitnessEndpoint } from '../../../lib/audit/witness-client.js';
import { logsOf, startWitness, TestLog, type WitnessHarness } from '../../support/witness-harness.js';

let witness: WitnessHarness | undefined;
afterEach(async () => {
  await witness?.close();
  witness = undefined;
});

const endpoint = (harness: WitnessHarness): WitnessEndpoint => ({ url: harness.url, verifier: harness.cosignatureVerifier });
const proofs = (log: TestLog) => async (from: number) => log.tree.consistencyProof(from);

describe('witness client', () => {
  it('submits a checkpoint, verifies the cosignature with the witness vkey and returns the line to append', async () => {
    const log = new TestLog('client.test/a').append(6);
    witness = await startWitness(logsOf(log));
    const note = await log.checkpoint();
    const cosignature = await submitCheckpoint(endpoint(witness), note, 0, proofs(log));
    expect(cosignature).toMatchObject({ witness: 'witness.test/w1', oldSize: 0 });
    expect(cosignature.timestamp).toBeGreaterThan(1_700_000_000);
    const cosigned = openCheckpoint(`${note}${cosignature.line}`, [parseVerifierKey(log.signer.verifierKey), witness.cosignatureVerifier]);
    expect(cosigned.verified).toHaveLength(2);
  });

  it('recovers from 409: retries from the size the witness reports, with a proof from there', async () => {
    const log = new TestLog('client.test/b').append(6);
    witness = await startWitness(logsOf(log));
    await submitCheckpoint(endpoint(witness), await log.checkpoint(), 0, proofs(log));
    log.append(9);
    // The client does not know the witness's size (e.g. after a restart): it starts from 0.
    const cosignature = await submitCheckpoint(endpoint(witness), await log.checkpoint(), 0, proofs(log));
    expect(cosignature.oldSize).toBe(6);
    expect((await witness.store.read(log.origin))?.size).toBe(15);
    // Resubmitting the same checkpoint (an ack lost in a crash) gets a fresh cosignature.
    expect((await submitCheckpoint(endpoint(witness), await log.checkpoint(), 3, proofs(log))).oldSize).toBe(15);
  });

  it('reports a fork and a rollback as alarms, an unknown log and a dead witness as such', async () => {
    const log = new TestLog('client.test/c').append(10);
    witness = await startWitness(logsOf(log));
    await submitCheckpoint(endpoint(witness), await log.checkpoint(), 0, proofs(log));
    const fork = log.forkAt(4).append(8);
    await expect(submitCheckpoint(endpoint(witness), await fork.checkpoint(), 10, proofs(fork))).rejects.toMatchObject({ code: 'witness_inconsistent', status: 422, transient: false });
    await expect(submitCheckpoint(endpoint(witness), await log.checkpoint(7), 0, proofs(log))).rejects.toMatchObject({ code: 'witness_ahead' });
    const other = new TestLog('client.test/other').append(2);
    await expect(submitCheckpoint(endpoint(witness), await other.checkpoint(), 0, proofs(other))).rejects.toMatchObject({ code: 'witness_unknown_log', status: 404 });
    // A cosignature from another key than the one configured for this witness is not accepted.
    const impostor: WitnessEndpoint = { url: witness.url, verifier: parseVerifierKey(new TestLog('witness.test/w1').signer.verifierKey) };
    log.append(1);
    await expect(submitCheckpoint(impostor, await log.checkpoint(), 10, proofs(log))).rejects.toMatchObject({ code: 'witness_bad_response' });
    const url = witness.url;
    await witness.close();
    witness = undefined;
    const error = await submitCheckpoint({ url, verifier: parseVerifierKey(new TestLog('w.test/x').signer.verifierKey) }, await log.checkpoint(), 11, proofs(log), { timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WitnessError);
    expect(error).toMatchObject({ code: 'witness_unavailable', transient: true });
  });
});
