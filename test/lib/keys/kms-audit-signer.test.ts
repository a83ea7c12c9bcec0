import { verify } from 'node:crypto';
import { CreateKeyCommand, KMSClient, VerifyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf, publicKeyFromPem } from '../../../lib/audit/checkpoint.js';
import { KmsAuditSigner } from '../../../lib/keys/kms-audit-signer.js';
import { startFakeKms, type FakeKms } from '../../support/kms-server.js';

let kms: FakeKms;
let client: KMSClient;

beforeAll(async () => {
  kms = await startFakeKms();
  client = new KMSClient({ region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
});
afterAll(async () => {
  client.destroy();
  await kms.close();
});

const open = (keyId: string) => KmsAuditSigner.open({ keyId, region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });

describe('KMS audit signer over HTTP with the real SDK client', () => {
  it('signs with an ECC_NIST_P256 key created through CreateKey; the DER signature verifies offline and in KMS', async () => {
    const created = await client.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const signer = await open(created.KeyMetadata?.KeyId ?? '');
    const message = Buffer.from('{"format":"tokenvault-audit-checkpoint/v1"}');
    const signature = await signer.sign(message);
    expect(signature[0]).toBe(0x30); // DER SEQUENCE, as KMS returns it
    expect(verify('sha256', message, { key: signer.publicKey, dsaEncoding: 'der' }, signature)).toBe(true);
    expect(verify('sha256', Buffer.from('other'), { key: signer.publicKey, dsaEncoding: 'der' }, signature)).toBe(false);
    const checked = await client.send(
      new VerifyCommand({ KeyId: created.KeyMetadata?.Arn, Message: message, Signature: signature, SigningAlgorithm: 'ECDSA_SHA_256', MessageType: 'RAW' }),
    );
    expect(checked.SignatureValid).toBe(true);
    expect(signer.label).toBe(`aws-kms:${created.KeyMetadata?.Arn}`);
    expect(signer.keyId).toBe(keyIdOf(publicKeyFromPem(signer.publicKeyPem)));
    expect(kms.calls.Sign).toBeGreaterThanOrEqual(1);
    signer.close();
  });

  it('KMS refuses a forged signature in Verify', async () => {
    const arn = kms.createSigningKey('alias/audit-verify');
    const signer = await open('alias/audit-verify');
    const signature = await signer.sign(Buffer.from('a'));
    await expect(
      client.send(new VerifyCommand({ KeyId: arn, Message: Buffer.from('b'), Signature: signature, SigningAlgorithm: 'ECDSA_SHA_256' })),
    ).rejects.toMatchObject({ name: 'KMSInvalidSignatureException' });
    signer.close();
  });

  it('refuses a symmetric key at start, naming the setting', async () => {
    await expect(open(kms.createKey())).rejects.toMatchObject({ code: 'audit_key_unsuitable', message: expect.stringMatching(/ECC_NIST_P256.*AUDIT_SIGNING_KEY_ID/) });
  });

  it('reports an unknown key and an unreachable KMS as errors naming the setting', async () => {
    await expect(open('alias/none')).rejects.toMatchObject({ code: 'kms_NotFoundException', message: expect.stringMatching(/AUDIT_SIGNING_KEY_ID/) });
    const arn = kms.createSigningKey();
    const signer = await open(arn);
    kms.fault = 'internal';
    try {
      await expect(signer.sign(Buffer.from('x'))).rejects.toMatchObject({ transient: true });
    } finally {
      kms.fault = undefined;
      signer.close();
    }
  });
});
