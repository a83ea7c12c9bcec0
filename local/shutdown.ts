type Cleanup = () => Promise<unknown> | unknown;

export interface ShutdownOptions {
  say: (line: string) => void;
  /**
   * Repeats of the signal within this window are the same Ctrl-C arriving again (the terminal
   * signals the whole process group and npm relays it to its child): ignored. Default 3 s.
   */
  repeatWindowMs?: number;
  /** After this long draining, stop the essentials and exit anyway. Default 45 s. */
  timeoutMs?: number;
}

export interface Shutdown {
  /** Closed in reverse order of adding. `essential` ones also run when the drain is cut short. */
  add(cleanup: Cleanup, options?: { essential?: boolean }): void;
  /** Handles SIGINT, SIGTERM, SIGHUP and uncaught errors from now on. */
  install(): void;
  /**
   * A start of something that outlives us unless stopped (PostgreSQL in its own process group):
   * a signal meanwhile waits for it to finish starting, so its cleanup is added before closing.
   */
  starting<T>(start: Promise<T>): Promise<T>;
  /** Closes everything added so far (a failed start). */
  closeAll(): Promise<void>;
}

/**
 * One Ctrl-C or one SIGTERM drains and stops everything. Unlike close-with-grace, a second
 * signal right after the first does not mean "exit now": with `npm start` every Ctrl-C arrives
 * at least twice. A signal after the window, or the timeout, cuts the drain short but still
 * stops the essentials (PostgreSQL, which runs in its own process group and would outlive us).
 */
export function createShutdown(options: ShutdownOptions): Shutdown {
  const repeatWindowMs = options.repeatWindowMs ?? 3_000;
  const timeoutMs = options.timeoutMs ?? 45_000;
  const cleanups: Array<{ run: Cleanup; essential: boolean; done: boolean }> = [];
  let closing: Promise<void> | undefined;
  let firstSignalAt = 0;
  let forced = false;
  const inFlightStarts = new Set<Promise<unknown>>();

  async function runOne(entry: { run: Cleanup; done: boolean }): Promise<void> {
    if (entry.done) return;
    entry.done = true;
    try {
      await entry.run();
    } catch {
      // Keep closing the rest: a half-stopped stack would leave PostgreSQL running.
    }
  }

  function closeAll(): Promise<void> {
    closing ??= (async () => {
      await Promise.allSettled([...inFlightStarts]);
      for (const entry of [...cleanups].reverse()) await runOne(entry);
    })();
    return closing;
  }

  async function force(reason: string): Promise<never> {
    if (!forced) {
      forced = true;
      options.say(`${reason}: stopping without waiting for in-flight work`);
      for (const entry of [...cleanups].reverse()) if (entry.essential) await runOne(entry);
    }
    process.exit(1);
  }

  function stop(exitCode: number): void {
    const timer = setTimeout(() => void force(`still stopping after ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    timer.unref();
    void closeAll().then(() => {
      clearTimeout(timer);
      options.say('stopped.');
      process.exit(exitCode);
    });
  }

  function onSignal(signal: NodeJS.Signals): void {
    if (closing === undefined) {
      firstSignalAt = Date.now();
      options.say(`\n${signal}: finishing in-flight work and shutting down…`);
      stop(0);
    } else if (Date.now() - firstSignalAt > repeatWindowMs) void force(`${signal} again`);
  }

  function onError(error: unknown): void {
    if (closing !== undefined) return;
    options.say(`stopping after an unexpected error: ${error instanceof Error ? error.message : String(error)}`);
    stop(1);
  }

  return {
    add(run, addOptions) {
      const entry = { run, essential: addOptions?.essential === true, done: false };
      cleanups.push(entry);
      // Started while stopping (a signal during start-up): close it right away, never leak it.
      if (closing !== undefined) void runOne(entry);
    },
    install() {
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
      process.on('uncaughtException', onError);
      process.on('unhandledRejection', onError);
    },
    starting(start) {
      inFlightStarts.add(start);
      void start.finally(() => inFlightStarts.delete(start)).catch(() => undefined);
      return start;
    },
    closeAll,
  };
}
