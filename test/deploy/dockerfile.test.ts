import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
const dockerignore = readFileSync(`${ROOT}.dockerignore`, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line.length > 0 && !line.startsWith('#'));
const entrypoint = readFileSync(`${ROOT}deploy/docker-entrypoint.sh`, 'utf8');

interface Stage {
  from: string;
  name: string | undefined;
  instructions: string[];
}

/** Instructions with line continuations joined, grouped by FROM. */
function stages(): Stage[] {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
  const result: Stage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from?.[1] !== undefined) result.push({ from: from[1], name: from[2], instructions: [] });
    else result.at(-1)?.instructions.push(line);
  }
  return result;
}

const ignored = (path: string): boolean =>
  dockerignore.some((pattern) => {
    const clean = pattern.replace(/^\*\*\//, '');
    return path === clean || path.startsWith(`${clean}/`);
  });

describe('Dockerfile', () => {
  it('builds in stages on a pinned Node.js 24 LTS bookworm-slim base, the version CI tests with', () => {
    const ciNode = readFileSync(`${ROOT}.ci/node-version`, 'utf8').trim();
    expect(ciNode).toMatch(/^24\.\d+\.\d+$/);
    expect(dockerfile).toMatch(new RegExp(`^ARG NODE_IMAGE=node:${ciNode.replaceAll('.', '\\.')}-bookworm-slim$`, 'm'));
    const all = stages();
    // runtime last: the default target; dev-idp (docker compose's identity provider) is never the image.
    expect(all.map((stage) => stage.name)).toEqual(['build', 'dev-idp', 'deps', 'runtime']);
    for (const stage of all) expect(stage.from).toBe(stage.name === 'dev-idp' ? 'build' : '${NODE_IMAGE}');
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { engines: { node: string }; devDependencies: Record<string, string> };
    expect(pkg.engines.node).toBe('>=22');
    expect(pkg.devDependencies['@types/node']).toMatch(/^\^24\./);
  });

  it('compiles with npm ci + npm run build and copies migrations and the default policy into dist', () => {
    const build = stages()[0]?.instructions.join('\n') ?? '';
    expect(build).toMatch(/RUN npm ci\b/);
    expect(build).toContain('npm run build');
    expect(build).toContain('cp -R db/migrations/. dist/db/migrations/');
    expect(build).toContain('cp services/reveal-api/policy.default.json dist/services/reveal-api/');
  });

  it('builds the web console into dist/console in the build stage, which the runtime image ships', () => {
    const build = stages()[0]?.instructions.join('\n') ?? '';
    expect(build).toContain('COPY console ./console');
    const scripts = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.build).toContain('npm run build:console');
    expect(scripts['build:console']).toBe('vite build --config console/vite.config.ts');
    expect(readFileSync(`${ROOT}console/vite.config.ts`, 'utf8')).toContain("new URL('../dist/console', import.meta.url)");
  });

  it('never enables the console\'s local sign-in (it mints tokens for any role)', () => {
    expect(dockerfile).not.toContain('CONSOLE_LOCAL_SIGN_IN');
    expect(entrypoint).not.toContain('CONSOLE_LOCAL_SIGN_IN');
    expect(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')).not.toContain('CONSOLE_LOCAL_SIGN_IN');
  });

  it('ships production dependencies only, runs as a non-root user, and has a health check', () => {
    const [, , deps, runtime] = stages();
    expect(deps?.instructions.join('\n')).toContain('npm ci --omit=dev');
    const instructions = runtime?.instructions ?? [];
    const user = instructions.filter((line) => line.startsWith('USER ')).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER\s+(root|0)(:|$)/);
    expect(instructions.some((line) => /^HEALTHCHECK .*CMD \["tokenvault", "healthcheck"\]/.test(line))).toBe(true);
    expect(instructions).toContain('ENTRYPOINT ["tokenvault"]');
    // No compiler, no sources, no dev tools in the final image: only dist, node_modules from `deps`, package.json.
    const copies = instructions.filter((line) => line.startsWith('COPY '));
    expect(copies.some((line) => line.includes('--from=deps') && line.includes('/app/node_modules'))).toBe(true);
    expect(copies.some((line) => line.includes('--from=build') && line.includes('/app/dist'))).toBe(true);
    expect(copies.some((line) => /\b(lib|services|test)\b/.test(line.replace(/\/app\/dist|dist/g, '')))).toBe(false);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    for (const stage of stages()) {
      for (const line of stage.instructions.filter((instruction) => instruction.startsWith('COPY ') && !instruction.includes('--from='))) {
        const args = line.split(/\s+/).slice(1).filter((arg) => !arg.startsWith('--'));
        for (const source of args.slice(0, -1)) {
          const path = source.replace(/^\.\//, '');
          expect(existsSync(`${ROOT}${path}`), `${path} exists`).toBe(true);
          expect(ignored(path), `${path} is excluded by .dockerignore`).toBe(false);
        }
      }
    }
    // Secrets and local state never enter the context.
    for (const path of ['.data', '.env', 'node_modules', '.git']) expect(ignored(path), path).toBe(true);
  });

  it('maps every entrypoint command to a compiled file whose TypeScript source exists', () => {
    const targets = [...entrypoint.matchAll(/exec node (dist\/\S+)\.js/g)].map((match) => match[1] ?? '');
    expect(targets).toEqual([
      'dist/services/ingestor/main',
      'dist/services/reveal-api/main',
      'dist/cli/migrate',
      'dist/cli/keys-rotate-kek',
      'dist/cli/keys-rotate-token-key',
      'dist/cli/audit-verify',
      'dist/cli/audit-export',
      'dist/cli/maintenance',
      'dist/cli/db-partition',
    ]);
    const build = JSON.parse(readFileSync(`${ROOT}tsconfig.build.json`, 'utf8')) as { include: string[]; compilerOptions: { outDir: string } };
    expect(build.compilerOptions.outDir).toBe('dist');
    for (const target of targets) {
      const source = target.replace(/^dist\//, '');
      expect(existsSync(`${ROOT}${source}.ts`), `${source}.ts`).toBe(true);
      expect(build.include).toContain(source.split('/')[0]);
    }
  });
});
