import { pathToFileURL } from 'node:url';
import { ConfigError, TokenvaultError } from './errors.js';

/** True when the module at `moduleUrl` is the script node was started with (not imported by a test). */
export function isEntryPoint(moduleUrl: string): boolean {
  return moduleUrl === pathToFileURL(process.argv[1] ?? '').href;
}

/**
 * How every entry point (service mains, CLIs) ends. `main` resolving with a number exits
 * with it (a command); resolving with nothing leaves the process running (a service, which
 * exits through its own graceful shutdown). A failure prints one line naming the program and
 * the error code, or the configuration problem, instead of a stack trace, and exits with 1.
 */
export function runMain(name: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      if (typeof code === 'number') process.exit(code);
    },
    (error: unknown) => {
      console.error(failureLine(name, error));
      process.exit(1);
    },
  );
}

export function failureLine(name: string, error: unknown): string {
  if (error instanceof ConfigError) return error.message;
  if (error instanceof TokenvaultError) return `${name} failed (${error.code}): ${error.message}`;
  return `${name} failed: ${error instanceof Error ? error.message : String(error)}`;
}
