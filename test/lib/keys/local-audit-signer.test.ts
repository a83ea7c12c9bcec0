import { verify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf, publicKeyFromPem } from '../../../lib/audit/checkpoint.js';
import { LocalAuditSigner, PUBLIC_KEY_SUFFIX } from '../../../lib/keys/local-audit-signer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-audit-key-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('local audit signing key', () => {
  it('is created once with mode 0600, labelled local-only, its public key written beside it', async () => {
    const file = join(dir, 'audit', 'signing-key.pem');
    const first = await LocalAuditSigner.open(file);
    const second = await LocalAuditSigner.open(file);
    expect(second.keyId).toBe(first.keyId);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // The label is published with every checkpoint: it never names the private key's file (issue 17 finding 5).
    expect(first.label).toBe('local-only');
    const publicPem = await readFile(`${file}${PUBLIC_KEY_SUFFIX}`, 'utf8');
    expect(keyIdOf(publicKeyFromPem(publicPem))).toBe(first.keyId);
    const signature = await first.sign(Buffer.from('checkpoint'));
    expect(verify('sha256', Buffer.from('checkpoint'), { key: publicKeyFromPem(publicPem), dsaEncoding: 'der' }, signature)).toBe(true);
  });

  it('refuses a file that is not a P-256 private key, naming the setting', async () => {
    const file = join(dir, 'not-a-key.pem');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, 'hello'));
    await expect(LocalAuditSigner.open(file)).rejects.toMatchObject({ message: expect.stringMatching(/AUDIT_SIGNING_KEY_FILE/) });
  });
});
