import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { browserTestsEnabled, launchBrowser, type Browser } from '../support/browser.js';
import { bearer, PURPOSE, SAMPLE_VALUES, type SeededValue } from '../support/reveal-harness.js';
import { SCREENSHOTS, startConsoleStack, type ConsoleStack } from './stack.js';
import { tamperAuditLog } from '../support/tamper-audit-log.js';

const enabled = browserTestsEnabled('web console (test/console/console.test.ts)');

let stack: ConsoleStack;
let browser: Browser;
let ip: SeededValue;
let device: SeededValue;
let ipv6: SeededValue;

beforeAll(async () => {
  if (!enabled) return;
  stack = await startConsoleStack();
  [ip, device, ipv6] = (await stack.harness.seed(SAMPLE_VALUES)) as [SeededValue, SeededValue, SeededValue];
  browser = await launchBrowser();
}, 180_000);

// A test that failed half-way must not leave its provider session to the next one.
afterEach(async () => {
  await browser?.context.clearCookies();
});

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Through the provider's own login and consent pages, as a person would. */
async function signInWithProvider(page: Page, login: string): Promise<void> {
  await page.goto(`${stack.oidcUrl}/console/`);
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).click();
  await page.waitForURL(`${stack.provider.issuer}/**`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const consent = page.getByRole('button', { name: 'Continue' });
  if (await consent.isVisible({ timeout: 5_000 }).catch(() => false)) await consent.click();
  await page.waitForURL(`${stack.oidcUrl}/console/**`);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** Sign-out ends the provider's session too (RP-initiated logout), so the next person must log in. */
async function signOutWithProvider(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${stack.provider.issuer}/**`);
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await page.waitForURL(`${stack.oidcUrl}/console/**`);
  await page.getByRole('button', { name: 'Sign in with your identity provider' }).waitFor();
}

async function localSignIn(page: Page, role: string, name?: string): Promise<void> {
  await page.goto(`${stack.localUrl}/console/`);
  await page.getByLabel('Role').selectOption(role);
  if (name !== undefined) await page.getByLabel('Name (optional)').fill(name);
  await page.getByRole('button', { name: `Sign in locally as ${role}` }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

async function reveal(page: Page, tokens: string[], purpose: string, ticket: string): Promise<void> {
  await page.getByLabel('Tokens (one per line)').fill(tokens.join('\n'));
  await page.getByLabel('Purpose').fill(purpose);
  await page.getByLabel('Ticket').fill(ticket);
  await page.getByRole('button', { name: 'Reveal', exact: true }).click();
}

describe.skipIf(!enabled)('web console in Chromium', () => {
  it('signs an investigator in through the OpenID provider (code + PKCE) and reveals plain values, cleared after the configured time', async () => {
    const page = await browser.context.newPage();
    await signInWithProvider(page, 'ivan');
    await expect.poll(() => page.url()).toBe(`${stack.oidcUrl}/console/reveal`);
    // Only what the policy gives an investigator: no audit, no erase.
    expect(await page.getByRole('navigation', { name: 'Views' }).getByRole('link').allTextContents()).toEqual(['Reveal']);
    expect(await page.getByTestId('session-expiry').textContent()).toMatch(/session ends in 1[0-5] min/);
    await reveal(page, [ip.token, device.token], PURPOSE, 'FRAUD-4711');
    const values = page.getByTestId('value');
    await expect.poll(() => values.allTextContents()).toEqual([ip.value, device.value]);
    // Done with that request: the form is empty for the next one.
    expect(await page.getByLabel('Tokens (one per line)').inputValue()).toBe('');
    expect(await page.getByLabel('Purpose').inputValue()).toBe('');
    expect(await page.getByLabel('Ticket').inputValue()).toBe('');
    await shot(page, 'reveal');
    // Tokens and values live in memory only: nothing in storage, cookies or the address bar.
    const stored = await page.evaluate<string>('JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie })');
    expect(stored).not.toContain(ip.value);
    expect(stored).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
    expect(page.url()).not.toContain('code=');
    // Cleared from the screen after CONSOLE_REVEAL_CLEAR_SECONDS (8 s here).
    await expect.poll(() => page.getByTestId('value').count(), { timeout: 15_000 }).toBe(0);
    expect(await page.content()).not.toContain(ip.value);
    await signOutWithProvider(page);
    await page.close();
  });

  it('refuses text that is not tokens with a clear error before sending anything, instead of rows with field "?"', async () => {
    const page = await browser.context.newPage();
    // A name of its own: the budgets of local-investigator stay untouched for the approval test.
    await localSignIn(page, 'investigator', 'ines');
    const before = (await stack.harness.testDb.owner.pool.query<{ count: string }>('SELECT count(*) FROM audit_log')).rows[0]?.count;
    await reveal(page, ['hello world'], PURPOSE, 'FRAUD-4711');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/“hello”, “world” are not tokens: nothing was sent\. Tokens look like ip_v1_… or device_id_v1_…/);
    expect(await alert.textContent()).toContain('Tokenize');
    expect(await page.locator('.results').count()).toBe(0);
    expect((await stack.harness.testDb.owner.pool.query<{ count: string }>('SELECT count(*) FROM audit_log')).rows[0]?.count).toBe(before);
    // Tokens separated by spaces or commas on one line are split.
    await reveal(page, [`${ip.token}, ${device.token}`], PURPOSE, 'FRAUD-4711');
    await expect.poll(() => page.getByTestId('value').allTextContents()).toEqual([ip.value, device.value]);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.close();
  });

  it('signs a support user in locally (npm start) and shows masked values, labelled as masked', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${stack.localUrl}/console/`);
    await page.getByRole('heading', { name: 'Local development sign-in' }).waitFor();
    expect(await page.locator('.local-sign-in').textContent()).toContain('Local stack only (npm start)');
    await shot(page, 'sign-in-local');
    await localSignIn(page, 'support');
    await reveal(page, [ipv6.token, device.token], 'customer called about a login', 'SUP-12');
    await expect.poll(() => page.getByTestId('value').allTextContents()).toEqual(['2001:db8:*:*:*:*:*:*', '***-**-5928']);
    expect(await page.locator('.results .badge', { hasText: 'masked' }).count()).toBe(2);
    expect(await page.content()).not.toContain(device.value);
    await shot(page, 'reveal-masked');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You signed out.').waitFor();
    await page.close();
  });

  it('holds a large reveal for approval, which a second person approves in their own queue, and the requester then collects', async () => {
    const many = await stack.harness.seed(Array.from({ length: 21 }, (_, index) => ({ field: 'ip' as const, value: `10.20.30.${index + 1}` })));
    const approver = await browser.context.newPage();
    await localSignIn(approver, 'approver');
    await expect.poll(() => approver.url()).toBe(`${stack.localUrl}/console/approvals`);
    await approver.getByText('Nothing is waiting for approval.').waitFor();

    const requester = await browser.context.newPage();
    await localSignIn(requester, 'investigator');
    await requester.getByTestId('budget').waitFor();
    expect(await requester.getByTestId('budget').textContent()).toMatch(/200 of 200 left/);
    await reveal(requester, many.map((item) => item.token), 'fraud ring 4711: linked devices', 'FRAUD-4712');
    await expect.poll(() => requester.getByTestId('pending-status').allTextContents()).toEqual(['waiting for approval']);
    expect(await requester.getByTestId('value').count()).toBe(0);
    await shot(requester, 'reveal-pending');

    // The approver's queue refreshes by itself.
    const card = approver.getByTestId('approval');
    await card.waitFor({ timeout: 15_000 });
    const text = await card.textContent();
    expect(text).toContain('local-investigator');
    expect(text).toContain('fraud ring 4711: linked devices');
    expect(text).toContain('FRAUD-4712');
    expect(text).toContain('21 ip');
    await shot(approver, 'approvals');
    // The buttons say why they are disabled until a reason is given.
    const hint = approver.getByTestId('decision-hint');
    expect(await hint.textContent()).toMatch(/Approve and Deny unlock once you give a reason of at least 3 characters/);
    expect(await approver.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(true);
    expect(await approver.getByRole('button', { name: 'Deny' }).isDisabled()).toBe(true);
    expect(await approver.getByRole('button', { name: 'Approve' }).getAttribute('aria-describedby')).toBe(await hint.getAttribute('id'));
    await approver.getByLabel('Reason for your decision').fill('matches FRAUD-4712');
    expect(await hint.textContent()).not.toMatch(/unlock/);
    expect(await approver.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(false);
    await approver.getByRole('button', { name: 'Approve' }).click();
    await approver.getByText('Approved the request of local-investigator.').waitFor();
    await approver.getByText('Nothing is waiting for approval.').waitFor();

    // The requester's page collects the values once approved, without a reload.
    await expect.poll(() => requester.getByTestId('value').count(), { timeout: 15_000 }).toBe(21);
    // Collected: no longer under "awaiting approval", but among the finished requests.
    expect(await requester.getByTestId('pending-request').count()).toBe(0);
    expect(await requester.getByRole('heading', { name: 'Requests awaiting approval' }).count()).toBe(0);
    expect(await requester.getByTestId('finished-status').allTextContents()).toEqual(['collected (shown below)']);
    expect(await requester.getByTestId('value').allTextContents()).toContain('10.20.30.21');
    await approver.close();
    await requester.close();
  });

  it('lets an auditor find the reveal by token, open the row, and see the chain verified', async () => {
    // A value only this test reveals (as the investigator ivan), so the search finds exactly its row.
    const [mine] = (await stack.harness.seed([{ field: 'ip', value: '192.0.2.44' }])) as [SeededValue];
    const revealed = await stack.localApp.inject({
      method: 'POST',
      url: '/reveal',
      headers: bearer(await stack.harness.token('ivan', ['investigator'])),
      payload: { tokens: [mine.token], purpose: PURPOSE, ticket: 'FRAUD-4711' },
    });
    expect(revealed.statusCode).toBe(200);
    await stack.oidcApp.auditCheckpointer?.checkpointNow();
    const page = await browser.context.newPage();
    await signInWithProvider(page, 'audrey');
    await expect.poll(() => page.url()).toBe(`${stack.oidcUrl}/console/audit`);
    expect(await page.getByRole('navigation', { name: 'Views' }).getByRole('link').allTextContents()).toEqual(['Audit log']);
    const verification = page.getByTestId('verification');
    /** The panel's state once it has a result; green is never shown next to "not yet covered". */
    const settled = async (wanted: string) => {
      await expect
        .poll(async () => {
          const state = await verification.getAttribute('data-state');
          const text = (await verification.textContent()) ?? '';
          if (state === 'verified') expect(text).not.toContain('not yet covered');
          if (text.includes('not yet covered')) expect(state).toBe('partial');
          return state;
        })
        .toBe(wanted);
    };
    await expect.poll(() => verification.getAttribute('data-state')).not.toBe('pending');
    // Opening the page and verifying wrote audit rows that no checkpoint covers yet: amber, saying
    // how many of the uncovered entries are the auditor's own reads.
    await page.getByRole('button', { name: 'Verify again' }).click();
    await settled('partial');
    expect(await verification.textContent()).toMatch(/Verified against the signed checkpoint at entry \d+; entries \d+ to \d+ are not yet covered/);
    const own = /(\d+) entr(?:y is|ies are) not yet covered by a signed checkpoint .*; (\d+) of them (?:is|are) your own reads of this log/.exec((await verification.textContent()) ?? '');
    expect(own, (await verification.textContent()) ?? '').not.toBeNull();
    expect(Number(own?.[2])).toBeGreaterThanOrEqual(1);
    expect(Number(own?.[2])).toBeLessThanOrEqual(Number(own?.[1]));
    await shot(page, 'audit-uncovered');
    // Green once a checkpoint covers every entry up to the head the next check reads.
    await stack.oidcApp.auditCheckpointer?.checkpointNow();
    await page.getByRole('button', { name: 'Verify again' }).click();
    await settled('verified');
    expect(await verification.textContent()).toMatch(/Verified against the signed checkpoint at entry \d+; chain intact through entry \d+/);

    await page.getByLabel('Token', { exact: true }).fill(mine.token);
    await page.locator('select[name="action"]').selectOption('reveal');
    expect(await page.getByTestId('filter-active').count()).toBe(0);
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('tbody tr[data-seq]');
    await expect.poll(() => rows.count()).toBe(1);
    // The page says that what it shows is filtered, and by what.
    expect(await page.getByTestId('filter-active').textContent()).toMatch(new RegExp(`Filter active: token = ${mine.token}, action = reveal\\. Only matching entries are shown\\.`));
    expect(await page.locator('caption').textContent()).toContain('matching the filter');
    expect(await rows.first().textContent()).toContain('ivan');
    await rows.first().focus();
    await page.keyboard.press('Enter');
    const detail = page.getByRole('complementary');
    await detail.waitFor();
    expect(await detail.textContent()).toContain('FRAUD-4711');
    expect(await detail.textContent()).toContain(PURPOSE);
    expect(await detail.textContent()).toContain(mine.token);
    expect(await page.content()).not.toContain(mine.value);
    await shot(page, 'audit');
    await page.getByRole('button', { name: 'Show all entries' }).click();
    await expect.poll(() => page.getByTestId('filter-active').count()).toBe(0);
    await expect.poll(() => rows.count()).toBeGreaterThan(1);

    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export (NDJSON)' }).click();
    const file = await (await download).path();
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines.some((line) => line.includes('"type":"row"') && line.includes(mine.token))).toBe(true);
    expect(lines.join('\n')).not.toContain(mine.value);
    await page.getByText(/Exported \d+ rows and \d+ checkpoints\./).waitFor();
    await signOutWithProvider(page);
    await page.close();
  });

  it('lets a privacy officer erase after a confirmation step decided by the vault: already erased values and refused lines are not counted', async () => {
    // Values of its own: the other tests still reveal the shared ones. One is erased already.
    const [device, gone] = (await stack.harness.seed([
      { field: 'device_id', value: '321-54-9876' },
      { field: 'ip', value: '198.51.100.77' },
    ])) as [SeededValue, SeededValue];
    await stack.harness.testDb.owner.pool.query('DELETE FROM pii_vault WHERE token = $1', [gone.token]);
    const page = await browser.context.newPage();
    await signInWithProvider(page, 'olga');
    await expect.poll(() => page.url()).toBe(`${stack.oidcUrl}/console/erase`);
    const tokens = page.getByLabel('Tokens to erase (one per line)');
    // A line that is not a token is refused before the review, with what a token looks like.
    await tokens.fill(`${device.token}\nhello`);
    await page.getByLabel('Purpose').fill('data subject erasure request 2291');
    await page.getByLabel('Ticket').fill('DSR-2291');
    await page.getByRole('button', { name: 'Review' }).click();
    expect(await page.getByRole('alert').textContent()).toMatch(/“hello” is not a token: nothing was sent/);
    await tokens.fill(`${device.token}\n${gone.token}`);
    await page.getByRole('button', { name: 'Review' }).click();
    const confirm = page.getByRole('region', { name: 'Confirm: these values will be shredded permanently' });
    await confirm.waitFor();
    expect(await confirm.locator('tbody tr').allTextContents()).toEqual([
      `${device.token}device_iderased`,
      `${gone.token}ipnothing to erase: not in the vault (already erased, or never stored)`,
    ]);
    const erase = page.getByRole('button', { name: 'Erase 1 value permanently' });
    expect(await erase.isDisabled()).toBe(true);
    await page.getByLabel('I understand that erased values cannot be recovered.').check();
    await shot(page, 'erase-confirm');
    await erase.click();
    await expect.poll(() => page.getByTestId('erase-result').allTextContents()).toEqual([`${device.token}: erased`]);
    // Done: the form is empty for the next erasure.
    expect(await tokens.inputValue()).toBe('');
    expect(await page.getByLabel('Purpose').inputValue()).toBe('');
    expect(await page.getByLabel('Ticket').inputValue()).toBe('');
    const after = await stack.localApp.inject({
      method: 'POST',
      url: '/reveal',
      headers: bearer(await stack.harness.token('alice', ['investigator'])),
      payload: { tokens: [device.token], purpose: PURPOSE },
    });
    expect(after.json()).toEqual({ results: [{ token: device.token, error: 'not_found' }], audit_seq: expect.any(Number) });
    // The review was audited as what it is.
    const { rows } = await stack.harness.testDb.owner.pool.query<{ reason: string }>("SELECT reason FROM audit_log WHERE action = 'erase.preview' ORDER BY seq DESC LIMIT 1");
    expect(rows[0]?.reason).toBe('erasable=1 not_found=1');
    await signOutWithProvider(page);
    await page.close();
  });

  it('gives an analyst a Tokenize view that finds the token of a known value', async () => {
    const page = await browser.context.newPage();
    await localSignIn(page, 'analyst');
    await expect.poll(() => page.url()).toBe(`${stack.localUrl}/console/tokenize`);
    expect(await page.getByRole('navigation', { name: 'Views' }).getByRole('link').allTextContents()).toEqual(['Tokenize']);
    await page.getByLabel('Field').selectOption('ip');
    await page.getByLabel('Values (one per line)').fill(`${ip.value}\nnot-an-ip`);
    await page.getByRole('button', { name: 'Find tokens' }).click();
    await expect.poll(() => page.getByTestId('token').allTextContents()).toEqual([ip.token]);
    expect(await page.locator('.results').textContent()).toContain('not a valid ip');
    await shot(page, 'tokenize');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.close();
  });

  it('shows an auditor a tampered log as broken, naming the first bad entry', async () => {
    // An investigator's reveal for the insider to edit.
    const revealed = await stack.localApp.inject({
      method: 'POST',
      url: '/reveal',
      headers: bearer(await stack.harness.token('ivan', ['investigator'])),
      payload: { tokens: [ip.token], purpose: PURPOSE, ticket: 'FRAUD-4711' },
    });
    expect(revealed.statusCode).toBe(200);
    const page = await browser.context.newPage();
    await signInWithProvider(page, 'audrey');
    const verification = page.getByTestId('verification');
    await expect.poll(() => verification.getAttribute('data-state')).not.toBe('pending');
    // The insider with database rights edits the purpose of the investigator's reveal.
    const { rows } = await stack.harness.testDb.owner.pool.query<{ seq: string; purpose: string }>(
      "SELECT seq, purpose FROM audit_log WHERE action = 'reveal' AND actor = 'ivan' ORDER BY seq LIMIT 1",
    );
    const seq = Number(rows[0]?.seq);
    await tamperAuditLog(stack.harness.testDb.owner.pool, "UPDATE audit_log SET purpose = 'routine check' WHERE seq = $1", [seq]);
    try {
      // The edited row was verified before: only re-reading the whole log finds the edit.
      await page.getByRole('button', { name: 'Re-verify the whole log' }).click();
      await expect.poll(() => verification.getAttribute('data-state')).toBe('broken');
      expect(await verification.textContent()).toContain(`BROKEN at entry ${seq}`);
    } finally {
      // Undone, so the tests that run after this one see an intact log.
      await tamperAuditLog(stack.harness.testDb.owner.pool, 'UPDATE audit_log SET purpose = $1 WHERE seq = $2', [rows[0]?.purpose, seq]);
    }
    await shot(page, 'audit-broken');
    await signOutWithProvider(page);
    await page.close();
  });
});
