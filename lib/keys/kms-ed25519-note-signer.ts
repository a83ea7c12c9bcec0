import { createPublicKey } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import type { NoteSigner } from '../audit/note/signer.js';
import { formatVerifierKey, keyIdOfNamedKey, rawEd25519PublicKey, SignatureType } from '../audit/note/vkey.js';
import { KeyProviderError } from '../errors.js';
import { callKms, type KmsKeyContext } from './kms-call.js';
import type { KmsAuditSignerOptions } from './kms-audit-signer.js';

/** kms:Sign takes at most 4096 bytes with MessageType RAW; a checkpoint note text is about 100. */
export const KMS_RAW_MESSAGE_LIMIT = 4096;

/**
 * Signs notes with an AWS KMS Ed25519 key (KeySpec ECC_NIST_EDWARDS25519, SIGN_VERIFY) as
 * signed-note type 0x01. ED25519_SHA_512 with MessageType RAW is pure Ed25519 (RFC 8032) over the
 * message, exactly what the type requires; ED25519_PH_SHA_512 (pre-hashed, DIGEST) is a
 * different algorithm and is never used. The private key never leaves KMS.
 */
export class KmsEd25519NoteSigner implements NoteSigner {
  private constructor(
    private readonly client: KMSClient,
    private readonly kmsKeyId: string,
    private readonly context: KmsKeyContext,
    readonly name: string,
    readonly keyId: number,
    readonly verifierKey: string,
  ) {}

  /** `setting` names the configuration that holds the key id, for error messages. */
  static async open(options: KmsAuditSignerOptions, name: string, setting: string): Promise<KmsEd25519NoteSigner> {
    const context: KmsKeyContext = { setting, requirement: 'an asymmetric ECC_NIST_EDWARDS25519 key with KeyUsage SIGN_VERIFY' };
    const client = new KMSClient({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts: 3,
    });
    try {
      const out = await callKms('GetPublicKey', () => client.send(new GetPublicKeyCommand({ KeyId: options.keyId })), context);
      if (out.KeyUsage !== 'SIGN_VERIFY' || out.KeySpec !== 'ECC_NIST_EDWARDS25519' || out.PublicKey === undefined) {
        throw new KeyProviderError('audit_key_unsuitable', `KMS key ${options.keyId} must be ${context.requirement} (${setting}); it is ${out.KeySpec ?? '?'} / ${out.KeyUsage ?? '?'}`);
      }
      if (out.SigningAlgorithms !== undefined && !out.SigningAlgorithms.includes('ED25519_SHA_512')) {
        throw new KeyProviderError('audit_key_unsuitable', `KMS key ${options.keyId} does not offer ED25519_SHA_512 (${setting})`);
      }
      const publicKey = rawEd25519PublicKey(createPublicKey({ key: Buffer.from(out.PublicKey), format: 'der', type: 'spki' }));
      const keyId = keyIdOfNamedKey(name, SignatureType.Ed25519, publicKey);
      return new KmsEd25519NoteSigner(client, options.keyId, context, name, keyId, formatVerifierKey(name, keyId, SignatureType.Ed25519, publicKey));
    } catch (error) {
      client.destroy();
      throw error;
    }
  }

  async sign(text: Buffer): Promise<Buffer> {
    if (text.length > KMS_RAW_MESSAGE_LIMIT) {
      throw new KeyProviderError('note_too_large', `a note text of ${text.length} bytes is larger than KMS signs directly (${KMS_RAW_MESSAGE_LIMIT})`);
    }
    const out = await callKms(
      'Sign',
      () => this.client.send(new SignCommand({ KeyId: this.kmsKeyId, Message: text, MessageType: 'RAW', SigningAlgorithm: 'ED25519_SHA_512' })),
      this.context,
    );
    if (out.Signature?.length !== 64) throw new KeyProviderError('kms_bad_response', 'KMS Sign returned no 64-byte Ed25519 signature');
    return Buffer.from(out.Signature);
  }

  close(): void {
    this.client.destroy();
  }
}
