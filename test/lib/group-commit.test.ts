import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../lib/group-commit.js';

/** A commit the test finishes by hand: each call waits until released. */
function manualCommit(results: (items: readonly number[]) => readonly string[] = (items) => items.map((item) => `r${item}`)) {
  const calls: { items: number[]; release: (error?: unknown) => void }[] = [];
  const commit = (items: readonly number[]) =>
    new Promise<readonly string[]>((resolve, reject) => {
      calls.push({ items: [...items], release: (error) => (error === undefined ? resolve(results(items)) : reject(error)) });
    });
  return { calls, commit };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('commits items that arrive while the writer is busy together, each caller getting its own result', async () => {
    const { calls, commit } = manualCommit();
    const group = new GroupCommit<number, string>({ commit });
    const first = group.submit(1);
    const rest = [group.submit(2), group.submit(3), group.submit(4)];
    expect(calls.map((call) => call.items)).toEqual([[1]]);
    calls[0]?.release();
    expect(await first).toBe('r1');
    await tick();
    expect(calls.map((call) => call.items)).toEqual([[1], [2, 3, 4]]);
    calls[1]?.release();
    expect(await Promise.all(rest)).toEqual(['r2', 'r3', 'r4']);
  });

  it('runs at most `writers` commits at once', async () => {
    const { calls, commit } = manualCommit();
    const group = new GroupCommit<number, string>({ commit, writers: 2 });
    const all = [1, 2, 3, 4].map((item) => group.submit(item));
    await tick();
    expect(calls.map((call) => call.items)).toEqual([[1], [2]]);
    calls[0]?.release();
    await tick();
    expect(calls.map((call) => call.items)).toEqual([[1], [2], [3, 4]]);
    calls[1]?.release();
    calls[2]?.release();
    expect(await Promise.all(all)).toEqual(['r1', 'r2', 'r3', 'r4']);
  });

  it('keeps a group within maxWeight, but always takes at least one item', async () => {
    const groups: number[][] = [];
    const group = new GroupCommit<number, string>({
      commit: async (items) => {
        groups.push([...items]);
        await tick();
        return items.map((item) => `r${item}`);
      },
      maxWeight: 10,
      weight: (item) => item,
    });
    // The first item starts a commit at once; the rest queue behind it.
    await Promise.all([1, 4, 5, 2, 30, 1].map((item) => group.submit(item)));
    expect(groups).toEqual([[1], [4, 5], [2], [30], [1]]);
  });

  it('rejects every item of a failed group, or retries each alone when retryAlone accepts the error', async () => {
    const refused = new Error('refused');
    const attempts: number[][] = [];
    const commit = async (items: readonly number[]) => {
      attempts.push([...items]);
      await tick();
      if (items.includes(13)) throw refused;
      return items.map((item) => `r${item}`);
    };
    const strict = new GroupCommit<number, string>({ commit });
    const blocked = strict.submit(0);
    const together = [strict.submit(12), strict.submit(13)].map((promise) => promise.catch((error: unknown) => error));
    await blocked;
    expect(await Promise.all(together)).toEqual([refused, refused]);

    attempts.length = 0;
    const lenient = new GroupCommit<number, string>({ commit, retryAlone: (error) => error === refused });
    const head = lenient.submit(0);
    const alone = [lenient.submit(12), lenient.submit(13), lenient.submit(14)].map((promise) => promise.catch((error: unknown) => error));
    await head;
    expect(await Promise.all(alone)).toEqual(['r12', refused, 'r14']);
    expect(attempts).toEqual([[0], [12, 13, 14], [12], [13], [14]]);
  });

  it('idle() resolves once nothing is queued or committing', async () => {
    const { calls, commit } = manualCommit();
    const group = new GroupCommit<number, string>({ commit });
    await group.idle();
    const pending = [group.submit(1), group.submit(2)];
    let idle = false;
    const waiting = group.idle().then(() => (idle = true));
    calls[0]?.release();
    await tick();
    expect(idle).toBe(false);
    calls[1]?.release();
    await waiting;
    expect(await Promise.all(pending)).toEqual(['r1', 'r2']);
  });

  it('rejects rather than invents a result when commit returns too few', async () => {
    const group = new GroupCommit<number, string>({ commit: async () => ['only one'] });
    const blocked = group.submit(0);
    const results = await Promise.allSettled([group.submit(1), group.submit(2)]);
    await blocked;
    expect(results[0]).toEqual({ status: 'fulfilled', value: 'only one' });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: expect.objectContaining({ message: expect.stringMatching(/1 results for 2 items/) }) });
  });
});
