import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNote } from '../../../lib/audit/note/open-note.js';
import { signNote } from '../../../lib/audit/note/signer.js';
import { formatCheckpoint, openCheckpoint } from '../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey, SignatureType } from '../../../lib/audit/note/vkey.js';
import { loadOrCreateEd25519Key } from '../../../lib/keys/ed25519-key-file.js';
import { KmsAuditSigner } from '../../../lib/keys/kms-audit-signer.js';
import { KmsEd25519NoteSigner } from '../../../lib/keys/kms-ed25519-note-signer.js';
import { LocalAuditSigner } from '../../../lib/keys/local-audit-signer.js';
import { ecdsaNoteSigner, ed25519NoteSigner } from '../../../lib/keys/note-signers.js';
import { startFakeKms, type FakeKms } from '../../support/kms-server.js';

const ORIGIN = 'example.com/tokenvault/audit';
const text = formatCheckpoint({ origin: ORIGIN, size: 3, rootHash: Buffer.from('39afad433268dc540e676802532a8d106fd475ec08a979ef22a1b982797ae0ae', 'hex'), extensions: [] });

let kms: FakeKms;
let client: KMSClient;
let dir: string;
beforeAll(async () => {
  kms = await startFakeKms();
  client = new KMSClient({ region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-note-keys-'));
});
afterAll(async () => {
  client.destroy();
  await kms.close();
  await rm(dir, { recursive: true, force: true });
});

const kmsOptions = (keyId: string) => ({ keyId, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });

describe('note signers', () => {
  it('signs checkpoints with the KMS ECDSA P-256 audit key as type 0x02 (the DER signature unchanged), key ID from the JSON key_id', async () => {
    const arn = kms.createSigningKey();
    const audit = await KmsAuditSigner.open(kmsOptions(arn));
    try {
      const signer = ecdsaNoteSigner(ORIGIN, audit);
      expect(signer.keyId.toString(16).padStart(8, '0')).toBe(audit.keyId.slice(0, 8));
      const verifier = parseVerifierKey(signer.verifierKey);
      expect(verifier.type).toBe(SignatureType.Ecdsa);
      const note = await signNote(text, [signer]);
      const opened = openCheckpoint(note, [verifier]);
      expect(opened.checkpoint.size).toBe(3);
      // KMS itself accepts the signature of the note text.
      const signature = opened.verified[0]!.signature;
      const check = await client.send(new VerifyCommand({ KeyId: arn, Message: Buffer.from(text), Signature: signature, SigningAlgorithm: 'ECDSA_SHA_256', MessageType: 'RAW' }));
      expect(check.SignatureValid).toBe(true);
    } finally {
      audit.close();
    }
  });

  it('signs with the local P-256 audit key the same way (today\'s JSON checkpoints keep their key)', async () => {
    const audit = await LocalAuditSigner.open(join(dir, 'audit-key.pem'));
    const signer = ecdsaNoteSigner(ORIGIN, audit);
    expect(openNote(await signNote(text, [signer]), [parseVerifierKey(signer.verifierKey)]).verified).toHaveLength(1);
  });

  it('signs with a KMS Ed25519 key (ECC_NIST_EDWARDS25519, ED25519_SHA_512, RAW) as type 0x01 through the real SDK', async () => {
    const created = await client.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }));
    const signer = await KmsEd25519NoteSigner.open(kmsOptions(created.KeyMetadata?.Arn ?? ''), ORIGIN, 'AUDIT_NOTE_KMS_ED25519_KEY_ID');
    try {
      const verifier = parseVerifierKey(signer.verifierKey);
      expect(verifier.type).toBe(SignatureType.Ed25519);
      const note = await signNote(text, [signer]);
      expect(openCheckpoint(note, [verifier]).verified).toHaveLength(1);
      await expect(signer.sign(Buffer.alloc(4097, 0x61))).rejects.toMatchObject({ code: 'note_too_large' });
    } finally {
      signer.close();
    }
  });

  it('refuses a KMS key of another kind, naming the setting', async () => {
    await expect(KmsEd25519NoteSigner.open(kmsOptions(kms.createSigningKey()), ORIGIN, 'AUDIT_NOTE_KMS_ED25519_KEY_ID')).rejects.toMatchObject({
      code: 'audit_key_unsuitable',
      message: expect.stringMatching(/ECC_NIST_EDWARDS25519.*AUDIT_NOTE_KMS_ED25519_KEY_ID/),
    });
    await expect(KmsAuditSigner.open(kmsOptions(kms.createSigningKey(undefined, 'ECC_NIST_EDWARDS25519')))).rejects.toMatchObject({ code: 'audit_key_unsuitable' });
  });

  it('keeps a local Ed25519 key in a 0600 file created once', async () => {
    const file = join(dir, 'nested', 'ed25519.pem');
    const first = ed25519NoteSigner(ORIGIN, await loadOrCreateEd25519Key(file, 'AUDIT_NOTE_ED25519_KEY_FILE'));
    const second = ed25519NoteSigner(ORIGIN, await loadOrCreateEd25519Key(file, 'AUDIT_NOTE_ED25519_KEY_FILE'));
    expect(second.verifierKey).toBe(first.verifierKey);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // Two signers, one note: both signatures verify, each with its own vkey.
    const audit = LocalAuditSigner.fromKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
    const both = await signNote(text, [ecdsaNoteSigner(ORIGIN, audit), first]);
    expect(openNote(both, [parseVerifierKey(first.verifierKey)]).unknown).toHaveLength(1);
    // A P-256 key file of its own (not another test's): refused as an Ed25519 key, whatever the order.
    const p256File = join(dir, 'p256-not-ed25519.pem');
    await LocalAuditSigner.open(p256File);
    await expect(loadOrCreateEd25519Key(p256File, 'AUDIT_NOTE_ED25519_KEY_FILE')).rejects.toMatchObject({ code: 'ed25519_key_invalid' });
  });
});
