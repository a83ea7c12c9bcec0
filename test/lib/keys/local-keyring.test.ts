import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-keyring-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('local keyring', () => {
  it('creates a 32-byte master key file with mode 0600 on first open and reuses it after', async () => {
    const file = join(await tempDir(), 'nested', 'master.key');
    const first = await LocalKeyring.open(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const generated = await first.generateDataKey('vault-data-key');
    const second = await LocalKeyring.open(file);
    await expect(second.decryptDataKey(generated, 'vault-data-key')).resolves.toEqual(generated.plaintext);
  });

  it('labels itself as not for production', async () => {
    const keyring = await LocalKeyring.open(join(await tempDir(), 'master.key'));
    expect(keyring.description).toMatch(/NOT FOR PRODUCTION/);
  });

  it('refuses to unwrap a key for another purpose or from another keyring', async () => {
    const dir = await tempDir();
    const keyring = await LocalKeyring.open(join(dir, 'a.key'));
    const other = await LocalKeyring.open(join(dir, 'b.key'));
    const generated = await keyring.generateDataKey('token-key');
    await expect(keyring.decryptDataKey(generated, 'vault-data-key')).rejects.toMatchObject({ code: 'unwrap_failed' });
    await expect(other.decryptDataKey(generated, 'token-key')).rejects.toMatchObject({ code: 'kek_unknown' });
  });

  it('rejects a master key file of the wrong size with a message naming the setting', async () => {
    const file = join(await tempDir(), 'bad.key');
    await writeFile(file, 'too short');
    await expect(LocalKeyring.open(file)).rejects.toThrow(/LOCAL_MASTER_KEY_FILE/);
  });
});
