/**
 * Runs a benchmark's main, then its cleanups in order whatever happened (servers stopped,
 * temporary databases dropped); a failure is printed and makes the exit code 1.
 */
export async function runBenchmark(main: () => Promise<void>, cleanups: readonly (() => Promise<unknown>)[], log: (line: string) => void): Promise<void> {
  try {
    await main();
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}
