import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open as openFile, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { open, seal } from '../crypto/aead.js';
import { KeyProviderError } from '../errors.js';
import { encryptionContext, type GeneratedKey, type KeyProvider, type KeyPurpose, type WrappedKey } from './key-provider.js';

/**
 * Development key provider: a 256-bit master key in a file (mode 0600), created on
 * first start. NOT FOR PRODUCTION: the KEK sits on the same disk as the data it protects.
 */
export class LocalKeyring implements KeyProvider {
  readonly description: string;
  private readonly kekId: string;

  private constructor(
    private readonly masterKey: Buffer,
    file: string,
  ) {
    this.kekId = `local:${createHash('sha256').update(masterKey).digest('hex').slice(0, 16)}`;
    this.description = `local keyring ${file} (${this.kekId}) — NOT FOR PRODUCTION`;
  }

  static async open(file: string): Promise<LocalKeyring> {
    return new LocalKeyring(await loadOrCreateMasterKey(file), file);
  }

  static fromKey(masterKey: Buffer, label = 'memory'): LocalKeyring {
    return new LocalKeyring(masterKey, label);
  }

  async generateDataKey(purpose: KeyPurpose): Promise<GeneratedKey> {
    const plaintext = randomBytes(32);
    return { plaintext, wrapped: seal(this.masterKey, plaintext, aad(purpose)), kekId: this.kekId };
  }

  async decryptDataKey(key: WrappedKey, purpose: KeyPurpose): Promise<Buffer> {
    if (key.kekId !== this.kekId) {
      throw new KeyProviderError('kek_unknown', `data key was wrapped by ${key.kekId}, this keyring holds ${this.kekId}`);
    }
    try {
      return open(this.masterKey, key.wrapped, aad(purpose));
    } catch (cause) {
      throw new KeyProviderError('unwrap_failed', 'local keyring could not unwrap a data key', { cause });
    }
  }

  async rewrapDataKey(key: WrappedKey, purpose: KeyPurpose): Promise<WrappedKey> {
    const plaintext = await this.decryptDataKey(key, purpose);
    return { wrapped: seal(this.masterKey, plaintext, aad(purpose)), kekId: this.kekId };
  }

  async check(): Promise<void> {}

  close(): void {
    this.masterKey.fill(0);
  }
}

function aad(purpose: KeyPurpose): Buffer {
  return Buffer.from(JSON.stringify(encryptionContext(purpose)));
}

async function loadOrCreateMasterKey(file: string): Promise<Buffer> {
  try {
    return validKey(await readFile(file), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  try {
    // 'wx' fails if another process created it meanwhile; then we read theirs.
    const handle = await openFile(file, 'wx', 0o600);
    await handle.writeFile(key);
    await handle.close();
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return validKey(await readFile(file), file);
  }
}

function validKey(content: Buffer, file: string): Buffer {
  if (content.length !== 32) {
    throw new KeyProviderError('master_key_invalid', `LOCAL_MASTER_KEY_FILE ${file} must hold exactly 32 bytes, found ${content.length}`);
  }
  return content;
}
