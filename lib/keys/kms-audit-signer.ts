import { createPublicKey, type KeyObject } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { keyIdOf } from '../audit/checkpoint.js';
import { KeyProviderError } from '../errors.js';
import type { AuditSigner } from './audit-signer.js';
import { callKms, type KmsKeyContext } from './kms-call.js';

export interface KmsAuditSignerOptions {
  keyId: string;
  region: string;
  endpoint: string | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Signs with an AWS KMS asymmetric key (KeySpec ECC_NIST_P256, KeyUsage SIGN_VERIFY,
 * ECDSA_SHA_256). The private key never leaves KMS; its public key is read once at start.
 */
export class KmsAuditSigner implements AuditSigner {
  readonly label: string;

  private constructor(
    private readonly client: KMSClient,
    private readonly kmsKeyId: string,
    readonly publicKey: KeyObject,
    readonly keyId: string,
    arn: string,
  ) {
    this.label = `aws-kms:${arn}`;
  }

  get publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  static async open(options: KmsAuditSignerOptions): Promise<KmsAuditSigner> {
    const client = new KMSClient({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts: 3,
    });
    try {
      const out = await call('GetPublicKey', () => client.send(new GetPublicKeyCommand({ KeyId: options.keyId })));
      if (out.KeyUsage !== 'SIGN_VERIFY' || out.KeySpec !== 'ECC_NIST_P256' || out.PublicKey === undefined) {
        throw new KeyProviderError(
          'audit_key_unsuitable',
          `KMS key ${options.keyId} must be an asymmetric ECC_NIST_P256 key with KeyUsage SIGN_VERIFY (AUDIT_SIGNING_KEY_ID); it is ${out.KeySpec ?? '?'} / ${out.KeyUsage ?? '?'}`,
        );
      }
      if (out.SigningAlgorithms !== undefined && !out.SigningAlgorithms.includes('ECDSA_SHA_256')) {
        throw new KeyProviderError('audit_key_unsuitable', `KMS key ${options.keyId} does not offer ECDSA_SHA_256 (AUDIT_SIGNING_KEY_ID)`);
      }
      const publicKey = createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' });
      return new KmsAuditSigner(client, options.keyId, publicKey, keyIdOf(publicKey), out.KeyId ?? options.keyId);
    } catch (error) {
      client.destroy();
      throw error;
    }
  }

  async sign(message: Buffer): Promise<Buffer> {
    const out = await call('Sign', () =>
      this.client.send(new SignCommand({ KeyId: this.kmsKeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' })),
    );
    if (out.Signature === undefined) throw new KeyProviderError('kms_bad_response', 'KMS Sign returned no signature');
    return Buffer.from(out.Signature);
  }

  close(): void {
    this.client.destroy();
  }
}

const KEY_CONTEXT: KmsKeyContext = { setting: 'AUDIT_SIGNING_KEY_ID', requirement: 'an asymmetric ECC_NIST_P256 key with KeyUsage SIGN_VERIFY' };

function call<T>(operation: string, send: () => Promise<T>): Promise<T> {
  return callKms(operation, send, KEY_CONTEXT);
}
