import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageInfo } from '../../lib/package-info.js';

describe('packageInfo', () => {
  it("reads the repository's own package.json", async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await packageInfo()).toEqual({ name: 'tokenvault', version });
  });

  it('finds it from the build output depth too, skipping package.json files of other packages', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tokenvault-package-info-'));
    try {
      await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'tokenvault', version: '9.8.7' }));
      await mkdir(join(root, 'dist', 'lib'), { recursive: true });
      await writeFile(join(root, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
      expect(await packageInfo(join(root, 'dist', 'lib', 'package-info.js'))).toEqual({ name: 'tokenvault', version: '9.8.7' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
