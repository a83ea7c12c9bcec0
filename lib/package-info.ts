import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  name: string;
  version: string;
}

/**
 * tokenvault's own package.json, found by walking up from this file: the same code runs from
 * the source tree (lib/) and from the image's build output (dist/lib/), at different depths.
 */
export async function packageInfo(from: string = fileURLToPath(import.meta.url)): Promise<PackageInfo> {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const text = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
    if (text !== undefined) {
      const parsed = JSON.parse(text) as Partial<PackageInfo>;
      if (parsed.name === 'tokenvault' && typeof parsed.version === 'string') return { name: parsed.name, version: parsed.version };
    }
    if (dirname(dir) === dir) throw new Error(`no package.json of tokenvault above ${from}`);
  }
}
