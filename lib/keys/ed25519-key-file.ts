import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KeyProviderError } from '../errors.js';

/**
 * LOCAL key material: an Ed25519 private key in a PKCS#8 PEM file (mode 0600), created on first
 * use. Signs checkpoint notes (local Ed25519 note signer) and a witness's cosignatures. `setting`
 * names the configuration that points at the file, for error messages.
 */
export async function loadOrCreateEd25519Key(file: string, setting: string): Promise<KeyObject> {
  try {
    return checkEd25519(createPrivateKey(await readFile(file, 'utf8')), file, setting);
  } catch (error) {
    if (error instanceof KeyProviderError) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new KeyProviderError('ed25519_key_unreadable', `cannot read the Ed25519 key ${file} (${setting})`, { cause: error });
    }
  }
  await mkdir(dirname(file), { recursive: true });
  const { privateKey } = generateKeyPairSync('ed25519');
  // 'wx': two processes starting at once must not overwrite each other's key.
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(privateKey.export({ type: 'pkcs8', format: 'pem' }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(file, 0o600);
    return privateKey;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return checkEd25519(createPrivateKey(await readFile(file, 'utf8')), file, setting);
    throw new KeyProviderError('ed25519_key_unwritable', `cannot create the Ed25519 key ${file} (${setting})`, { cause: error });
  }
}

function checkEd25519(key: KeyObject, file: string, setting: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new KeyProviderError('ed25519_key_invalid', `${file} is not an Ed25519 private key (${setting})`);
  return key;
}
