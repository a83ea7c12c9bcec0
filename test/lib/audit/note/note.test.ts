import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EMPTY_ROOT } from '../../../../lib/audit/merkle/hash.js';
import { cosignatureMessage, readCosignatureTimestamp } from '../../../../lib/audit/note/cosignature-message.js';
import { NoteError } from '../../../../lib/audit/note/errors.js';
import { openNote } from '../../../../lib/audit/note/open-note.js';
import { signNote } from '../../../../lib/audit/note/signer.js';
import { MAX_SIGNATURES, parseSignedNote } from '../../../../lib/audit/note/signed-note.js';
import { formatCheckpoint, openCheckpoint, parseCheckpoint } from '../../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey, rawEd25519PublicKey, SignatureType } from '../../../../lib/audit/note/vkey.js';
import { ed25519Cosigner, ed25519NoteSigner } from '../../../../lib/keys/note-signers.js';
import {
  CHECKPOINT_SPEC_EXAMPLE,
  COSIGNATURE_VECTORS,
  DOCS_CHECKPOINT,
  ECDSA_NOTES,
  ed25519FromSeed,
  seedOfSignerKey,
  SIGNED_NOTE_SPEC_EXAMPLE,
  SUMDB,
  WITNESS_TEST,
} from './vectors.js';

const code = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof NoteError) return error.code;
    throw error;
  }
};

describe('C2SP signed notes: published vectors', () => {
  it('reproduces golang.org/x/mod/sumdb/note TestSign byte for byte from its published key', async () => {
    const signer = ed25519NoteSigner('PeterNeumann', ed25519FromSeed(seedOfSignerKey(SUMDB.peterSignerKey)));
    expect(signer.verifierKey).toBe(SUMDB.peterVerifierKey);
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(await signNote(SUMDB.text, [signer])).toBe(`${SUMDB.text}\n${SUMDB.peterSig}`);
  });

  it('opens the sumdb TestOpen notes: known keys verified, unknown keys kept, duplicates dropped', () => {
    const peter = parseVerifierKey(SUMDB.peterVerifierKey);
    const enoch = parseVerifierKey(SUMDB.enochVerifierKey);
    const both = `${SUMDB.text}\n${SUMDB.peterSig}${SUMDB.enochSig}`;
    const onePeter = openNote(both, [peter]);
    expect(onePeter.text).toBe(SUMDB.text);
    expect(onePeter.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(onePeter.unknown.map((s) => [s.name, s.keyId])).toEqual([['EnochRoot', 0xaf0cfe78]]);
    expect(openNote(both, [peter, enoch]).verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(code(() => openNote(both, []))).toBe('note_unverified');
    expect(code(() => openNote(`${SUMDB.text}\n${SUMDB.enochSig}`, [enoch, peter, enoch]))).toBe('note_ambiguous_key');
    expect(code(() => openNote(`${SUMDB.text}\n${SUMDB.peterSig}`, [enoch, peter, enoch]))).toBeUndefined();
    // Too many signatures.
    expect(code(() => openNote(`${SUMDB.text}\n${SUMDB.peterSig.repeat(MAX_SIGNATURES + 1)}`, [peter]))).toBe('note_malformed');
    // A known key whose signature does not verify rejects the whole note.
    const tampered = `${SUMDB.peterSig.slice(0, 60)}ABCD${SUMDB.peterSig.slice(60)}`;
    expect(code(() => openNote(`${SUMDB.text}\n${tampered}`, [peter]))).toBe('note_invalid_signature');
    // Duplicated verified and unverified signatures.
    const enochAbcd = `${SUMDB.enochSig.slice(0, 60)}ABCD${SUMDB.enochSig.slice(60)}`;
    const duplicated = openNote(`${SUMDB.text}\n${SUMDB.peterSig}${SUMDB.peterSig}${SUMDB.enochSig}${SUMDB.enochSig}${enochAbcd}`, [peter]);
    expect(duplicated.verified).toHaveLength(1);
    expect(duplicated.unknown).toHaveLength(2);
  });

  it('refuses the malformed notes of sumdb TestOpen', () => {
    const peter = parseVerifierKey(SUMDB.peterVerifierKey);
    const bad = [
      SUMDB.text,
      `${SUMDB.text}\n`,
      `${SUMDB.text}\n${SUMDB.peterSig.slice(0, -1)}`,
      `\x01${SUMDB.text}\n${SUMDB.peterSig}`,
      `${SUMDB.text}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${SUMDB.text}\n${SUMDB.peterSig}Unexpected line.\n`,
    ];
    for (const note of bad) expect(code(() => openNote(note, [peter])), JSON.stringify(note.slice(-40))).toBe('note_malformed');
    // "\xff" in Go is an invalid UTF-8 byte.
    const invalidUtf8 = Buffer.concat([Buffer.from([0xff]), Buffer.from(`${SUMDB.text}\n${SUMDB.peterSig}`)]);
    expect(code(() => openNote(invalidUtf8, [peter]))).toBe('note_malformed');
    // Non-canonical base64 (a changed padding bit) is refused too.
    expect(code(() => parseSignedNote(`${SUMDB.text}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAN=\n`))).toBe(
      'note_malformed',
    );
  });

  it('parses vkeys strictly: every truncation and every changed byte of a good one is refused (sumdb TestNewVerifier)', () => {
    expect(parseVerifierKey(SUMDB.peterVerifierKey).verifierKey).toBe(SUMDB.peterVerifierKey);
    const bytes = Buffer.from(SUMDB.peterVerifierKey);
    for (let i = 0; i <= bytes.length; i += 1) {
      for (let j = i + 1; j <= bytes.length; j += 1) {
        if (i === 0 && j === bytes.length) continue;
        expect(code(() => parseVerifierKey(bytes.subarray(i, j).toString())), bytes.subarray(i, j).toString()).toMatch(/^vkey_/);
      }
    }
    for (let i = 0; i < bytes.length; i += 1) {
      const changed = Buffer.from(bytes);
      changed[i]! += 1;
      expect(code(() => parseVerifierKey(changed.toString())), changed.toString()).toMatch(/^vkey_/);
    }
    for (const vkey of SUMDB.badVerifierKeys) expect(code(() => parseVerifierKey(vkey))).toMatch(/^vkey_/);
  });

  it('verifies the example of the signed-note spec', () => {
    const verifier = parseVerifierKey(SIGNED_NOTE_SPEC_EXAMPLE.verifierKey);
    expect(verifier.type).toBe(SignatureType.Ed25519);
    expect(openNote(SIGNED_NOTE_SPEC_EXAMPLE.note, [verifier]).text).toBe('This is an example message.\n');
  });

  it('verifies real ECDSA (type 0x02) checkpoints of Rekor and the Pixel log', () => {
    for (const { verifierKey, note } of [ECDSA_NOTES.rekor, ECDSA_NOTES.pixel]) {
      const verifier = parseVerifierKey(verifierKey);
      expect(verifier.type).toBe(SignatureType.Ecdsa);
      expect(verifier.verifierKey).toBe(verifierKey);
      const opened = openCheckpoint(note, [verifier]);
      expect(opened.verified).toHaveLength(1);
    }
    expect(openCheckpoint(ECDSA_NOTES.rekor.note, [parseVerifierKey(ECDSA_NOTES.rekor.verifierKey)]).checkpoint).toMatchObject({ origin: 'Rekor', size: 798034 });
    // Another name with the same key material is another key: the signature is unknown, the note unverified.
    const renamed = parseVerifierKey(ECDSA_NOTES.rekor.verifierKey.replace('rekor.sigstore.dev', 'bananas.sigstore.dev'));
    expect(code(() => openNote(ECDSA_NOTES.rekor.note, [renamed]))).toBe('note_unverified');
    // A signature whose bytes changed under the right key is invalid.
    const broken = ECDSA_NOTES.rekor.note.replace('wNI9ajBEAiAR', 'wNI9ajBEAiAS');
    expect(code(() => openNote(broken, [parseVerifierKey(ECDSA_NOTES.rekor.verifierKey)]))).toBe('note_invalid_signature');
    expect(code(() => parseVerifierKey(ECDSA_NOTES.ctLogKeyType5))).toBe('vkey_unsupported');
  });

  it('opens the signed checkpoints of the transparency-dev witness tests with the log key only', () => {
    const monkeys = parseVerifierKey(WITNESS_TEST.monkeysVerifierKey);
    expect(openCheckpoint(WITNESS_TEST.init, [monkeys]).checkpoint).toMatchObject({ origin: 'monkeys', size: 5 });
    expect(openCheckpoint(WITNESS_TEST.next, [monkeys]).checkpoint).toMatchObject({ origin: 'monkeys', size: 8 });
    expect(code(() => openCheckpoint(WITNESS_TEST.init, [parseVerifierKey(WITNESS_TEST.bananasVerifierKey)]))).toBe('note_unverified');
    // Our Ed25519 signer reproduces the log's signature from its published key.
    const signer = ed25519NoteSigner('monkeys', ed25519FromSeed(seedOfSignerKey(WITNESS_TEST.monkeysSignerKey)));
    expect(signer.verifierKey).toBe(WITNESS_TEST.monkeysVerifierKey);
  });
});

describe('C2SP tlog-checkpoint', () => {
  it('parses the spec example and formats the same text back', () => {
    const text = parseSignedNote(CHECKPOINT_SPEC_EXAMPLE).text;
    const checkpoint = parseCheckpoint(text);
    expect(checkpoint).toMatchObject({ origin: 'example.com/behind-the-sofa', size: 20852163, extensions: [] });
    expect(checkpoint.rootHash.toString('base64')).toBe('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    expect(formatCheckpoint(checkpoint)).toBe(text);
  });

  it('is strict about sizes, hashes, line counts and extension lines', () => {
    const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';
    const bad = [
      `o\n05\n${root}\n`, // leading zero
      `o\n-5\n${root}\n`,
      `o\n5\n`, // too few lines
      `o\n5\n${root}`, // no final newline
      `o\n5\n${root}\n\next\n`, // empty extension line
      `\n5\n${root}\n`, // empty origin
      `o\n5\nAAAA\n`, // not 32 bytes
      `o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n`, // non-canonical base64
      `o\n9007199254740992\n${root}\n`, // 2^53
      `o\n5\n${root}\r\n`,
    ];
    for (const text of bad) expect(code(() => parseCheckpoint(text)), JSON.stringify(text)).toBe('checkpoint_malformed');
    expect(parseCheckpoint(`o\n0\n${EMPTY_ROOT.toString('base64')}\n`).size).toBe(0);
    expect(parseCheckpoint(`o\n5\n${root}\nextension one\n`).extensions).toEqual(['extension one']);
    expect(code(() => formatCheckpoint({ origin: 'has space', size: 1, rootHash: EMPTY_ROOT, extensions: [] }))).toBe('checkpoint_malformed');
    expect(code(() => formatCheckpoint({ origin: 'o', size: 0, rootHash: Buffer.alloc(32, 1), extensions: [] }))).toBe('checkpoint_malformed');
  });
});

describe('C2SP tlog-cosignature (timestamped Ed25519, type 0x04)', () => {
  it('reads the published vkeys and timestamps', () => {
    expect(parseVerifierKey(COSIGNATURE_VECTORS.nativeVerifierKey).type).toBe(SignatureType.CosignatureV1);
    const field = Buffer.from(COSIGNATURE_VECTORS.timestampedSignature, 'base64');
    expect(readCosignatureTimestamp(field.subarray(4))).toBe(COSIGNATURE_VECTORS.timestamp);
    // The spec's example cosignature signs "time 1679315147".
    const example = parseSignedNote(CHECKPOINT_SPEC_EXAMPLE).signatures[1]!;
    expect(readCosignatureTimestamp(example.signature)).toBe(1679315147);
  });

  it('signs cosignature/v1 messages that verify with the vkey and with plain Ed25519 over the spec message', async () => {
    const key = ed25519FromSeed(seedOfSignerKey(WITNESS_TEST.witnessSignerKey));
    const at = 1_700_000_000_123;
    const cosigner = ed25519Cosigner('witness', key, () => at);
    // The witness's plain vkey (type 0x01) and its cosignature vkey share the key, not the key ID.
    expect(rawEd25519PublicKey(createPublicKey(key)).equals(Buffer.from(WITNESS_TEST.witnessVerifierKey.split('+')[2]!, 'base64').subarray(1))).toBe(true);
    expect(cosigner.verifierKey.split('+')[1]).not.toBe(WITNESS_TEST.witnessVerifierKey.split('+')[1]);
    const text = parseSignedNote(WITNESS_TEST.init).text;
    const signature = await cosigner.sign(Buffer.from(text));
    expect(signature).toHaveLength(72);
    expect(signature.readBigUInt64BE(0)).toBe(1_700_000_000n);
    const message = `cosignature/v1\ntime 1700000000\n${text}`;
    expect(cosignatureMessage(1_700_000_000, text).toString()).toBe(message);
    expect(verify(null, Buffer.from(message), createPublicKey(key), signature.subarray(8))).toBe(true);
    const cosigned = `${WITNESS_TEST.init}${(await signNote(text, [cosigner])).slice(text.length + 1)}`;
    const opened = openCheckpoint(cosigned, [parseVerifierKey(WITNESS_TEST.monkeysVerifierKey), parseVerifierKey(cosigner.verifierKey)]);
    expect(opened.verified.map((s) => [s.name, s.timestamp])).toEqual([
      ['monkeys', undefined],
      ['witness', 1_700_000_000],
    ]);
    // The cosignature covers the time: another timestamp with the same signature fails.
    const forged = Buffer.from(signature);
    forged.writeBigUInt64BE(1_700_000_001n, 0);
    expect(parseVerifierKey(cosigner.verifierKey).verify(Buffer.from(text), forged)).toBe(false);
    // A plain Ed25519 vkey of the same key does not accept a cosignature (different key ID and message).
    const plain = ed25519NoteSigner('witness', key);
    expect(code(() => openNote(cosigned, [parseVerifierKey(plain.verifierKey)]))).toBe('note_unverified');
  });

  it('signs and verifies with a fresh key round trip, covering extension lines', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const cosigner = ed25519Cosigner('w.example/1', privateKey);
    const text = 'log.example\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\nExtendo\n';
    const note = await signNote(text, [cosigner]);
    expect(openNote(note, [parseVerifierKey(cosigner.verifierKey)]).verified).toHaveLength(1);
    expect(code(() => openNote(note.replace('Extendo', 'Extendx'), [parseVerifierKey(cosigner.verifierKey)]))).toBe('note_invalid_signature');
  });
});

describe('the checkpoint vector of docs/transparency-log.md', () => {
  it('is reproduced byte for byte from its keys and opens with both vkeys', async () => {
    const log = ed25519NoteSigner('example.com/tokenvault/audit', ed25519FromSeed(Buffer.from(DOCS_CHECKPOINT.logSeed, 'hex')));
    const witness = ed25519Cosigner('example.com/tokenvault/witness', ed25519FromSeed(Buffer.from(DOCS_CHECKPOINT.witnessSeed, 'hex')), () => DOCS_CHECKPOINT.timestampMs);
    expect([log.verifierKey, witness.verifierKey]).toEqual([DOCS_CHECKPOINT.logVerifierKey, DOCS_CHECKPOINT.witnessVerifierKey]);
    const text = parseSignedNote(DOCS_CHECKPOINT.note).text;
    expect(await signNote(text, [log, witness])).toBe(DOCS_CHECKPOINT.note);
    const opened = openCheckpoint(DOCS_CHECKPOINT.note, [parseVerifierKey(DOCS_CHECKPOINT.logVerifierKey), parseVerifierKey(DOCS_CHECKPOINT.witnessVerifierKey)]);
    expect(opened.checkpoint.rootHash.toString('hex')).toBe('39afad433268dc540e676802532a8d106fd475ec08a979ef22a1b982797ae0ae');
    expect(opened.verified[1]!.timestamp).toBe(DOCS_CHECKPOINT.timestampMs / 1000);
  });
});
