import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { loadRotationConfig, rotationEnvSchema } from '../../lib/keys/rotation/config.js';
import { loadMaintenanceConfig, maintenanceEnvSchema } from '../../lib/lifecycle/config.js';
import { ingestorEnvSchema, loadIngestorConfig } from '../../services/ingestor/config.js';
import { loadRevealConfig, revealEnvSchema } from '../../services/reveal-api/config.js';

const K8S = fileURLToPath(new URL('../../deploy/k8s/', import.meta.url));

// Loose shapes: the test checks what it reads.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Manifest = { apiVersion: string; kind: string; metadata: { name?: string; generateName?: string }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> };

function load(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(`${K8S}${file}`, 'utf8')).map((doc) => {
    expect(doc.errors, file).toEqual([]);
    return doc.toJS() as Manifest;
  });
}

const kustomization = parse(readFileSync(`${K8S}kustomization.yaml`, 'utf8')) as { namespace: string; resources: string[]; images: { name: string; newName: string; newTag: string }[] };
const applied = kustomization.resources.flatMap(load);
const jobs = readdirSync(`${K8S}jobs`).flatMap((file) => load(`jobs/${file}`));
const secret = load('secret.example.yaml')[0];

const byKind = (kind: string): Manifest[] => applied.filter((m) => m.kind === kind);
const named = (kind: string, name: string): Manifest => {
  const found = applied.find((m) => m.kind === kind && m.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name}`);
  return found;
};
const configMap = (name: string): Record<string, string> => named('ConfigMap', name).data ?? {};
const container = (workload: Manifest): any => workload.spec.template.spec.containers[0];

/** The environment a container gets: its ConfigMaps, plus placeholders for Secret values. */
function environment(workload: Manifest): Record<string, string> {
  const c = container(workload);
  const env: Record<string, string> = {};
  for (const source of c.envFrom ?? []) Object.assign(env, configMap(source.configMapRef.name));
  for (const entry of c.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    else {
      const ref = entry.valueFrom.secretKeyRef;
      expect(ref.name).toBe('tokenvault-database');
      expect(Object.keys(secret?.stringData ?? {}), `secret key ${ref.key}`).toContain(ref.key);
      env[entry.name] = secret?.stringData?.[ref.key] ?? '';
    }
  }
  return env;
}

function expectHardened(workload: Manifest): void {
  const pod = workload.spec.template.spec;
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
  for (const c of pod.containers) {
    expect(c.securityContext, c.name).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c.resources.requests.cpu, c.name).toBeDefined();
    expect(c.resources.requests.memory, c.name).toBeDefined();
    expect(c.resources.limits.memory, c.name).toBeDefined();
  }
}

describe('deploy/k8s manifests', () => {
  it('parse, and the kustomization applies every manifest but the secret example and the manual jobs', () => {
    const files = readdirSync(K8S).filter((file) => file.endsWith('.yaml') && !['kustomization.yaml', 'secret.example.yaml'].includes(file));
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(kustomization.namespace).toBe('tokenvault');
    expect(byKind('Namespace').map((m) => m.metadata.name)).toEqual(['tokenvault']);
    expect(applied.map((m) => m.kind).sort()).toEqual(
      ['ConfigMap', 'ConfigMap', 'ConfigMap', 'ConfigMap', 'CronJob', 'Deployment', 'Deployment', 'Job', 'Namespace', 'PodDisruptionBudget', 'PodDisruptionBudget', 'PrometheusRule', 'ScaledObject', 'Service', 'ServiceAccount', 'ServiceAccount', 'ServiceAccount'].sort(),
    );
    // No Secret with values is ever applied from the repository.
    expect(byKind('Secret')).toEqual([]);
    expect(jobs.map((job) => job.metadata.generateName).sort()).toEqual(['tokenvault-audit-verify-', 'tokenvault-rotate-kek-', 'tokenvault-rotate-token-key-']);
  });

  it('pins the image: a version tag through kustomize, the same full reference in the manual jobs', () => {
    const [image] = kustomization.images;
    expect(image?.name).toBe('tokenvault');
    expect(image?.newTag).toMatch(/^\d+\.\d+\.\d+$/);
    for (const workload of [...byKind('Deployment'), ...byKind('Job')]) expect(container(workload).image).toBe('tokenvault');
    for (const job of jobs) expect(container(job).image).toBe(`${image?.newName}:${image?.newTag}`);
  });

  it('gives both services startup, liveness and readiness probes on the port the process listens on', () => {
    const cases = [
      { name: 'tokenvault-ingestor', port: 9464, portName: 'metrics', setting: 'METRICS_PORT', args: ['ingestor'] },
      { name: 'tokenvault-reveal-api', port: 3000, portName: 'http', setting: 'PORT', args: ['reveal-api'] },
    ];
    for (const { name, port, portName, setting, args } of cases) {
      const deployment = named('Deployment', name);
      const c = container(deployment);
      expect(c.args).toEqual(args);
      expect(c.ports).toEqual([{ name: portName, containerPort: port }]);
      expect(environment(deployment)[setting]).toBe(String(port));
      expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: portName });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: portName });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: portName });
      expect(deployment.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(port));
      expect(deployment.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': name });
      expectHardened(deployment);
      // Probes must reach the process from outside its network namespace.
      expect(environment(deployment)[name.endsWith('ingestor') ? 'METRICS_HOST' : 'HOST']).toBe('0.0.0.0');
    }
    const service = named('Service', 'tokenvault-reveal-api');
    expect(service.spec.selector).toEqual({ 'app.kubernetes.io/name': 'tokenvault-reveal-api' });
    expect(service.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http' }]);
  });

  it('configures every workload with settings its config schema knows, including all it requires', () => {
    const ingestor = environment(named('Deployment', 'tokenvault-ingestor'));
    const reveal = environment(named('Deployment', 'tokenvault-reveal-api'));
    const cases: [string, Record<string, string>, string[]][] = [
      ['ingestor', ingestor, Object.keys(ingestorEnvSchema.shape)],
      ['reveal-api', reveal, Object.keys(revealEnvSchema.shape)],
    ];
    for (const job of jobs.filter((j) => container(j).args[0].startsWith('keys:'))) {
      cases.push([container(job).args[0], environment(job), Object.keys(rotationEnvSchema.shape)]);
    }
    for (const [name, env, known] of cases) {
      for (const setting of Object.keys(env)) expect(known, `${name} is given ${setting}, which it does not read`).toContain(setting);
      expect(env.LOCAL_MASTER_KEY_FILE, name).toBeUndefined();
      expect(env.JWT_SECRET, name).toBeUndefined();
    }
    expect(loadIngestorConfig(ingestor)).toMatchObject({ database: { role: 'ingestor' }, keyProvider: { kind: 'aws-kms' } });
    expect(loadRevealConfig(reveal)).toMatchObject({ database: { role: 'reveal_api' }, jwt: { source: { kind: 'jwks' } } });
    for (const job of jobs.filter((j) => container(j).args[0].startsWith('keys:'))) {
      expect(loadRotationConfig(environment(job)).database.role).toBeUndefined();
      expect(job.spec.template.spec.serviceAccountName).toBe('tokenvault-key-admin');
      expect(container(job).env).toEqual([{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'tokenvault-database', key: 'owner-url' } } }]);
    }
    const migrate = named('Job', 'tokenvault-migrate');
    expect(container(migrate).args).toEqual(['migrate']);
    expect(Object.keys(environment(migrate))).toEqual(['DATABASE_URL']);
    expect(container(migrate).env[0].valueFrom.secretKeyRef.key).toBe('owner-url');
    for (const job of [migrate, ...jobs]) {
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
      expectHardened(job);
    }
  });

  it('runs maintenance daily as a CronJob: one run at a time, as the owner, with settings its config schema knows', () => {
    const cron = named('CronJob', 'tokenvault-maintenance');
    expect(cron.apiVersion).toBe('batch/v1');
    expect(cron.spec.schedule).toMatch(/^\S+ \S+ \* \* \*$/);
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const job = { ...cron, spec: cron.spec.jobTemplate.spec } as Manifest;
    const c = container(job);
    expect(c.image).toBe('tokenvault');
    expect(c.args).toEqual(['maintenance']);
    expect(c.env[0]).toEqual({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'tokenvault-database', key: 'owner-url' } } });
    const env = environment(job);
    for (const setting of Object.keys(env)) expect(Object.keys(maintenanceEnvSchema.shape), `maintenance is given ${setting}, which it does not read`).toContain(setting);
    const config = loadMaintenanceConfig(env);
    expect(config.database.role).toBeUndefined();
    expect(config.loginRetentionDays).toBeGreaterThan(0);
    expect(config.quarantineRetentionDays).toBeGreaterThan(0);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    // Retention must finish well inside the schedule's period.
    expect(job.spec.activeDeadlineSeconds).toBeLessThan(24 * 3600);
    expectHardened(job);
  });

  it('scales the ingestor with a KEDA aws-sqs-queue ScaledObject on the queue the ingestor consumes', () => {
    const [scaled] = byKind('ScaledObject');
    expect(scaled?.apiVersion).toBe('keda.sh/v1alpha1');
    expect(scaled?.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'tokenvault-ingestor' });
    expect(scaled?.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(scaled?.spec.maxReplicaCount).toBeGreaterThan(scaled?.spec.minReplicaCount);
    const [trigger] = scaled?.spec.triggers ?? [];
    const ingestor = environment(named('Deployment', 'tokenvault-ingestor'));
    expect(trigger).toMatchObject({
      type: 'aws-sqs-queue',
      metadata: { queueURL: ingestor.SQS_QUEUE_URL, awsRegion: ingestor.AWS_REGION, identityOwner: 'operator' },
    });
    expect(trigger.metadata.queueLength).toMatch(/^[1-9][0-9]*$/);
    // Connections at full scale stay bounded and visible in the manifests.
    expect(scaled?.spec.maxReplicaCount * Number(ingestor.DATABASE_POOL_SIZE)).toBeLessThanOrEqual(100);
  });

  it('keeps a disruption budget for both services, and gives the ingestor time to finish its batches on shutdown', () => {
    const budgets = byKind('PodDisruptionBudget');
    for (const name of ['tokenvault-ingestor', 'tokenvault-reveal-api']) {
      const budget = budgets.find((b) => b.metadata.name === name);
      expect(budget?.spec.selector.matchLabels).toEqual(named('Deployment', name).spec.selector.matchLabels);
    }
    const ingestor = named('Deployment', 'tokenvault-ingestor');
    expect(ingestor.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(Number(environment(ingestor).SHUTDOWN_TIMEOUT_SECONDS));
    const serviceAccounts = byKind('ServiceAccount').map((sa) => sa.metadata.name);
    for (const deployment of byKind('Deployment')) expect(serviceAccounts).toContain(deployment.spec.template.spec.serviceAccountName);
  });
});
