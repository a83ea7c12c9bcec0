import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMaintenanceMetrics } from '../../lib/lifecycle/metrics.js';
import { LocalKeyring } from '../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../lib/keys/token-keys.js';
import { startHealthServer, type HealthServer } from '../../services/ingestor/http.js';
import { createIngestor, type Ingestor } from '../../services/ingestor/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { capturedLogger, startSqsHarness, type SqsHarness } from '../support/ingestor-harness.js';
import { startRevealHarness, type RevealHarness } from '../support/reveal-harness.js';

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
const read = (path: string) => readFileSync(`${DEPLOY}${path}`, 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
const alerts = parse(read('prometheus/alerts.yml')) as { groups: { name: string; rules: Rule[] }[] };
const dashboard = JSON.parse(read('grafana/tokenvault.json')) as { panels: { type: string; title: string; targets?: { expr: string }[] }[] };

/**
 * Series that come from elsewhere than the services' /metrics: CloudWatch's SQS metrics through
 * the YACE exporter, and kube-state-metrics for the audit verification Job.
 */
const EXTERNAL_METRICS = ['aws_sqs_approximate_age_of_oldest_message_maximum', 'aws_sqs_approximate_number_of_messages_visible_maximum', 'kube_job_status_failed'];

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, label names, strings, numbers or durations. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$__\w+/g, ' ')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*(\()?)/g)) {
    if (match[1] === '(' || PROMQL_WORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** Series names a /metrics text exposes: each `# TYPE` and the suffixes its type implies. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name = '', type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

const expressions = [
  ...alerts.groups.flatMap((group) => group.rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr }))),
  ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `panel "${panel.title}"`, expr: target.expr }))),
];

describe('Prometheus alert rules and the Grafana dashboard', () => {
  const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!promtool) console.warn('promtool is not installed: SKIPPED `promtool check rules` and `promtool test rules` (apt-get install prometheus; CI installs it)');

  it.runIf(promtool)('pass promtool check rules and the unit tests in alerts.test.yml', () => {
    for (const args of [['check', 'rules', 'alerts.yml'], ['test', 'rules', 'alerts.test.yml']]) {
      const run = spawnSync('promtool', args, { cwd: `${DEPLOY}prometheus`, encoding: 'utf8' });
      expect(run.status, `promtool ${args.join(' ')}\n${run.stdout}\n${run.stderr}`).toBe(0);
    }
  });

  it('give every alert a severity, a summary and a description, and have a unit test for most of them', () => {
    const tests = read('prometheus/alerts.test.yml');
    const rules = alerts.groups.flatMap((group) => group.rules);
    for (const rule of rules) {
      expect(['critical', 'warning', 'info'], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      expect(rule.annotations.description, rule.alert).toBeTruthy();
    }
    const tested = rules.filter((rule) => tests.includes(`alertname: ${rule.alert}\n`));
    expect(tested.length / rules.length).toBeGreaterThanOrEqual(0.75);
  });

  it('ship the same groups as a PrometheusRule applied by the kustomization', () => {
    const rule = parse(read('k8s/prometheus-rule.yaml')) as { apiVersion: string; kind: string; spec: { groups: unknown } };
    expect(rule).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule' });
    expect(rule.spec.groups).toEqual(alerts.groups);
    expect((parse(read('k8s/kustomization.yaml')) as { resources: string[] }).resources).toContain('prometheus-rule.yaml');
  });

  it('find metric names in expressions (the checker below is not vacuous)', () => {
    expect(metricNames('sum by (action) (increase(tokenvault_rate_limit_hits_total{action="reveal"}[15m])) > 100')).toEqual(['tokenvault_rate_limit_hits_total']);
    expect(metricNames('a_total / clamp_min(sum(rate(b_bucket[5m])), 1e-9) > 0.05')).toEqual(['a_total', 'b_bucket']);
    for (const { where, expr } of expressions) expect(metricNames(expr).length, where).toBeGreaterThan(0);
  });

  describe('name only metrics that running services export', () => {
    let testDb: TestDatabase;
    let sqs: SqsHarness;
    let ingestor: Ingestor;
    let health: HealthServer;
    let reveal: RevealHarness;
    beforeAll(async () => {
      testDb = await createTestDatabase();
      sqs = await startSqsHarness();
      const keys = LocalKeyring.fromKey(Buffer.alloc(32, 7));
      await loadActiveTokenizer(testDb.owner.db, keys);
      ingestor = createIngestor({
        sqs: sqs.sqs,
        queueUrl: await sqs.createQueue('metrics-names'),
        database: testDb.as('ingestor'),
        keys,
        logger: capturedLogger().logger,
        options: { pollers: 1, waitTimeSeconds: 1 },
      });
      await ingestor.start();
      health = await startHealthServer({ host: '127.0.0.1', port: 0, registry: ingestor.registry, checkReady: () => ingestor.checkReady() });
      reveal = await startRevealHarness();
    }, 120_000);
    afterAll(async () => {
      await health?.close();
      await ingestor?.stop();
      await sqs?.close();
      await testDb?.drop();
      await reveal?.close();
    });

    it('every dashboard and alert expression', async () => {
      const ingestorText = await (await fetch(`http://127.0.0.1:${health.port}/metrics`)).text();
      const revealText = (await reveal.app.inject({ method: 'GET', url: '/metrics' })).body;
      // The maintenance CronJob is not scraped: it pushes its registry to a Pushgateway at the end of each run.
      const maintenanceText = await createMaintenanceMetrics().registry.metrics();
      const exported = new Set([...exposedNames(ingestorText), ...exposedNames(revealText), ...exposedNames(maintenanceText)]);
      expect(exported.size).toBeGreaterThan(10);
      const unknown = expressions.flatMap(({ where, expr }) =>
        metricNames(expr)
          .filter((name) => !exported.has(name) && !EXTERNAL_METRICS.includes(name))
          .map((name) => `${where}: ${name}`),
      );
      expect(unknown).toEqual([]);
    });
  });
});
