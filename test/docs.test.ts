import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { AUDIT_OUTCOMES } from '../services/reveal-api/audit/auditor.js';

const read = (path: string) => readFile(new URL(`../${path}`, import.meta.url), 'utf8');
const [auditFormat, operations, governance, readme, entrypoint, ciNode] = (await Promise.all(
  ['docs/audit-format.md', 'docs/operations.md', 'docs/governance.md', 'README.md', 'deploy/docker-entrypoint.sh', '.ci/node-version'].map(read),
)) as [string, string, string, string, string, string];

/** The backticked names in the third cell of a `| \`column\` | type | values |` row. */
function valuesOfRow(markdown: string, column: string): string[] {
  const row = markdown.split('\n').find((line) => line.startsWith(`| \`${column}\` |`)) ?? '';
  return [...(row.split('|')[3] ?? '').matchAll(/`([a-z_.]+)`/g)].map((match) => match[1] ?? '');
}

describe('docs say what the code does', () => {
  it('audit-format.md lists exactly the outcomes an audit row can carry', () => {
    expect(valuesOfRow(auditFormat, 'outcome').sort()).toEqual([...AUDIT_OUTCOMES].sort());
  });

  it("operations.md's entrypoint table has every command of the image, and the image's Node.js version", () => {
    const commands = [...entrypoint.matchAll(/^ {2}([a-z][a-z:-]*)(?: \| [^)]*)?\)/gm)].map((match) => match[1] ?? '');
    expect(commands).toEqual(expect.arrayContaining(['ingestor', 'reveal-api', 'maintenance', 'db:partition', 'mint-local-token', 'healthcheck', 'help']));
    const table = operations.slice(operations.indexOf('| Command |'), operations.indexOf('\n\n', operations.indexOf('| Command |')));
    const firstCells = table.split('\n').map((line) => line.split('|')[1] ?? '').join('\n');
    for (const command of commands) expect(firstCells, command).toMatch(new RegExp(`\`${command}[ \`]`));
    expect(operations).toContain(`Node.js ${ciNode.trim().split('.')[0]} LTS`);
    expect(operations).not.toMatch(/Node 20/);
  });

  it("governance.md's worked example pastes as it is: shell variables, no elided ids", () => {
    const example = governance.slice(governance.indexOf('## Worked example'), governance.indexOf('## Routes and shapes'));
    const commands = example.split('\n').filter((line) => !line.startsWith('#') && !/^\s*#/.test(line));
    expect(commands.join('\n')).not.toMatch(/…/);
    expect(example).toMatch(/\/approvals\/\$REQUEST/);
    expect(example).toMatch(/\/reveal-requests\/\$REQUEST/);
  });

  it('README and docs show response bodies in snake_case', () => {
    for (const [name, text] of [['README.md', readme], ['docs/governance.md', governance], ['docs/operations.md', operations]] as const) {
      expect(text, name).not.toMatch(/"(keyVersion|nextCursor|occurredAt|fieldCounts|firstBrokenSeq|accessToken|expiresAt|revealClearSeconds|localSignIn|clientId)"/);
    }
  });
});
