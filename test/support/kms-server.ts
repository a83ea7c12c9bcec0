import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small KMS-wire-compatible endpoint (AWS JSON 1.1 protocol, `X-Amz-Target: TrentService.*`)
 * so tests drive the real @aws-sdk/client-kms over HTTP. It does real cryptography: each key
 * has its own 256-bit secret, ciphertext blobs are AES-256-GCM bound to the key id and the
 * encryption context, and a wrong context or key fails like KMS does (InvalidCiphertextException).
 * Asymmetric ECC_NIST_P256 / SIGN_VERIFY keys sign for real (ECDSA_SHA_256, DER signatures as
 * KMS returns them) and give out their public key (GetPublicKey, DER SubjectPublicKeyInfo);
 * ECC_NIST_EDWARDS25519 / SIGN_VERIFY keys sign with ED25519_SHA_512 (pure Ed25519, MessageType
 * RAW, 64-byte signatures). Messages are limited to 4096 bytes as in KMS.
 */
export interface FakeKms {
  endpoint: string;
  region: string;
  /** Any credentials work (requests are not signature-checked); the SDK needs some to sign with. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Creates a symmetric key and returns its ARN. */
  createKey(alias?: string): string;
  /** Creates a SIGN_VERIFY key (ECC_NIST_P256 unless another spec is given) and returns its ARN. */
  createSigningKey(alias?: string, spec?: SigningKeySpec): string;
  disableKey(keyIdOrArn: string): void;
  /** Calls per operation name, e.g. calls.GenerateDataKey. */
  calls: Record<string, number>;
  /** While set, every request fails with this (e.g. a 500 InternalException or dropping the socket). */
  fault: 'internal' | 'drop' | undefined;
  close(): Promise<void>;
}

export type SigningKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_EDWARDS25519';

const SIGNING_ALGORITHMS: Record<SigningKeySpec, string[]> = {
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  ECC_NIST_EDWARDS25519: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
};

interface FakeKey {
  arn: string;
  id: string;
  secret: Buffer;
  enabled: boolean;
  /** Present on asymmetric signing keys. */
  signing?: { privateKey: KeyObject; publicKey: KeyObject; spec: SigningKeySpec };
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const ACCOUNT = '000000000000';

export async function startFakeKms(region = 'us-east-1'): Promise<FakeKms> {
  const keys = new Map<string, FakeKey>();
  const aliases = new Map<string, string>();
  const calls: Record<string, number> = {};

  const resolve = (keyId: unknown): FakeKey => {
    if (typeof keyId !== 'string') throw new KmsError('ValidationException', 'KeyId is required');
    const id = keyId.startsWith('alias/') ? aliases.get(keyId) : keyId.replace(/^arn:aws:kms:[^:]+:\d+:key\//, '');
    const key = id === undefined ? undefined : keys.get(id);
    if (key === undefined) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
    return key;
  };
  const usable = (key: FakeKey): FakeKey => {
    if (!key.enabled) throw new KmsError('DisabledException', `${key.arn} is disabled.`);
    return key;
  };

  const encrypt = (key: FakeKey, plaintext: Buffer, context: unknown): Buffer => {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.secret, nonce);
    cipher.setAAD(contextBytes(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(key.id);
    return Buffer.concat([Buffer.from([id.length]), id, nonce, body, cipher.getAuthTag()]);
  };
  const decrypt = (blob: Buffer, context: unknown): { key: FakeKey; plaintext: Buffer } => {
    const idLength = blob[0] ?? 0;
    const key = keys.get(blob.subarray(1, 1 + idLength).toString());
    if (key === undefined || blob.length < 1 + idLength + 28) throw new KmsError('InvalidCiphertextException', '');
    usable(key);
    const nonce = blob.subarray(1 + idLength, 13 + idLength);
    const tag = blob.subarray(blob.length - 16);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.secret, nonce);
      decipher.setAAD(contextBytes(context));
      decipher.setAuthTag(tag);
      const plaintext = Buffer.concat([decipher.update(blob.subarray(13 + idLength, blob.length - 16)), decipher.final()]);
      return { key, plaintext };
    } catch {
      throw new KmsError('InvalidCiphertextException', '');
    }
  };

  const operations: Record<string, (input: Record<string, unknown>) => unknown> = {
    CreateKey: (input) => {
      if (input.KeySpec === undefined || input.KeySpec === 'SYMMETRIC_DEFAULT') return { KeyMetadata: metadata(create()) };
      if ((input.KeySpec !== 'ECC_NIST_P256' && input.KeySpec !== 'ECC_NIST_EDWARDS25519') || input.KeyUsage !== 'SIGN_VERIFY') {
        throw new KmsError('UnsupportedOperationException', `KeySpec ${String(input.KeySpec)} with KeyUsage ${String(input.KeyUsage)} is not emulated`);
      }
      return { KeyMetadata: metadata(createSigning(input.KeySpec)) };
    },
    GetPublicKey: (input) => {
      const key = usable(resolve(input.KeyId));
      if (key.signing === undefined) throw new KmsError('UnsupportedOperationException', `${key.arn} is not an asymmetric key`);
      return {
        KeyId: key.arn,
        PublicKey: b64(key.signing.publicKey.export({ type: 'spki', format: 'der' })),
        KeySpec: key.signing.spec,
        KeyUsage: 'SIGN_VERIFY',
        SigningAlgorithms: SIGNING_ALGORITHMS[key.signing.spec],
      };
    },
    Sign: (input) => {
      const key = signingKey(input);
      const message = unb64(input.Message);
      const signature =
        key.signing.spec === 'ECC_NIST_EDWARDS25519'
          ? sign(null, message, key.signing.privateKey)
          : sign('sha256', message, { key: key.signing.privateKey, dsaEncoding: 'der' });
      return { KeyId: key.arn, Signature: b64(signature), SigningAlgorithm: input.SigningAlgorithm };
    },
    Verify: (input) => {
      const key = signingKey(input);
      const message = unb64(input.Message);
      const valid =
        key.signing.spec === 'ECC_NIST_EDWARDS25519'
          ? verify(null, message, key.signing.publicKey, unb64(input.Signature))
          : verify('sha256', message, { key: key.signing.publicKey, dsaEncoding: 'der' }, unb64(input.Signature));
      if (!valid) throw new KmsError('KMSInvalidSignatureException', '');
      return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: input.SigningAlgorithm };
    },
    CreateAlias: (input) => {
      aliases.set(String(input.AliasName), resolve(input.TargetKeyId).id);
      return {};
    },
    DescribeKey: (input) => ({ KeyMetadata: metadata(resolve(input.KeyId)) }),
    GenerateDataKey: (input) => {
      const key = usable(resolve(input.KeyId));
      const bytes = input.KeySpec === 'AES_128' ? 16 : Number(input.NumberOfBytes ?? 32);
      const plaintext = randomBytes(bytes);
      return { KeyId: key.arn, Plaintext: b64(plaintext), CiphertextBlob: b64(encrypt(key, plaintext, input.EncryptionContext)) };
    },
    Encrypt: (input) => {
      const key = usable(resolve(input.KeyId));
      return { KeyId: key.arn, CiphertextBlob: b64(encrypt(key, unb64(input.Plaintext), input.EncryptionContext)) };
    },
    Decrypt: (input) => {
      const { key, plaintext } = decrypt(unb64(input.CiphertextBlob), input.EncryptionContext);
      if (input.KeyId !== undefined && resolve(input.KeyId).id !== key.id) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key used to encrypt.');
      }
      return { KeyId: key.arn, Plaintext: b64(plaintext), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
    ReEncrypt: (input) => {
      const { key: source, plaintext } = decrypt(unb64(input.CiphertextBlob), input.SourceEncryptionContext);
      const destination = usable(resolve(input.DestinationKeyId));
      return {
        SourceKeyId: source.arn,
        KeyId: destination.arn,
        CiphertextBlob: b64(encrypt(destination, plaintext, input.DestinationEncryptionContext)),
      };
    },
  };

  /**
   * Sign/Verify preconditions as KMS checks them: a SIGN_VERIFY key, an algorithm of its key spec,
   * a message of at most 4096 bytes. Only MessageType RAW is emulated (ED25519_SHA_512 requires it;
   * ED25519_PH_SHA_512 would need DIGEST).
   */
  const signingKey = (input: Record<string, unknown>): FakeKey & { signing: NonNullable<FakeKey['signing']> } => {
    const key = usable(resolve(input.KeyId));
    if (key.signing === undefined) throw new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ENCRYPT_DECRYPT which is not valid for signing.`);
    if (!SIGNING_ALGORITHMS[key.signing.spec].includes(String(input.SigningAlgorithm))) {
      throw new KmsError('InvalidKeyUsageException', `Algorithm ${String(input.SigningAlgorithm)} is incompatible with key spec ${key.signing.spec}.`);
    }
    if ((input.MessageType ?? 'RAW') !== 'RAW') throw new KmsError('UnsupportedOperationException', 'only MessageType RAW is emulated');
    if (input.SigningAlgorithm === 'ED25519_PH_SHA_512') throw new KmsError('ValidationException', 'ED25519_PH_SHA_512 requires MessageType DIGEST');
    if (unb64(input.Message).length > 4096) throw new KmsError('ValidationException', 'Message must be at most 4096 bytes long');
    return key as FakeKey & { signing: NonNullable<FakeKey['signing']> };
  };

  const createSigning = (spec: SigningKeySpec = 'ECC_NIST_P256'): FakeKey => {
    const key = create();
    const pair = spec === 'ECC_NIST_EDWARDS25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    key.signing = { ...pair, spec };
    return key;
  };

  const create = (): FakeKey => {
    const id = randomUUID();
    const key = { id, arn: `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`, secret: randomBytes(32), enabled: true };
    keys.set(id, key);
    return key;
  };

  const fake: FakeKms = {
    endpoint: '',
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    calls,
    fault: undefined,
    createKey(alias) {
      const key = create();
      if (alias !== undefined) aliases.set(alias.startsWith('alias/') ? alias : `alias/${alias}`, key.id);
      return key.arn;
    },
    createSigningKey(alias, spec) {
      const key = createSigning(spec);
      if (alias !== undefined) aliases.set(alias.startsWith('alias/') ? alias : `alias/${alias}`, key.id);
      return key.arn;
    },
    disableKey(keyIdOrArn) {
      resolve(keyIdOrArn).enabled = false;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (fake.fault === 'drop') {
      req.socket.destroy();
      return;
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.replace(/^TrentService\./, '');
    calls[operation] = (calls[operation] ?? 0) + 1;
    res.setHeader('content-type', 'application/x-amz-json-1.1');
    try {
      if (fake.fault === 'internal') throw new KmsError('KMSInternalException', 'injected fault', 500);
      const run = operations[operation];
      if (run === undefined) throw new KmsError('UnsupportedOperationException', `${operation} is not emulated`);
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      res.end(JSON.stringify(run(input)));
    } catch (error) {
      const failure = error instanceof KmsError ? error : new KmsError('KMSInternalException', String(error), 500);
      res.statusCode = failure.status;
      res.setHeader('x-amzn-errortype', failure.type);
      res.end(JSON.stringify({ __type: failure.type, message: failure.message }));
    }
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  fake.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;

  function metadata(key: FakeKey) {
    return {
      KeyId: key.id,
      Arn: key.arn,
      AWSAccountId: ACCOUNT,
      Enabled: key.enabled,
      KeyState: key.enabled ? 'Enabled' : 'Disabled',
      KeyUsage: key.signing === undefined ? 'ENCRYPT_DECRYPT' : 'SIGN_VERIFY',
      KeySpec: key.signing === undefined ? 'SYMMETRIC_DEFAULT' : key.signing.spec,
      ...(key.signing === undefined ? {} : { SigningAlgorithms: SIGNING_ALGORITHMS[key.signing.spec] }),
      CreationDate: Date.now() / 1000,
    };
  }
}

const b64 = (bytes: Buffer): string => bytes.toString('base64');
const unb64 = (value: unknown): Buffer => {
  if (typeof value !== 'string') throw new KmsError('ValidationException', 'blob must be a base64 string');
  return Buffer.from(value, 'base64');
};

/** KMS binds the encryption context order-independently. */
function contextBytes(context: unknown): Buffer {
  const entries = Object.entries((context ?? {}) as Record<string, string>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries));
}
