import { ConfigError, TokenvaultError } from '../lib/errors.js';

/**
 * Runs a command's main and exits with its code. A failure prints one line naming the
 * command and the error code (or the configuration problem) instead of a stack trace.
 */
export function runCommand(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof ConfigError) console.error(error.message);
      else if (error instanceof TokenvaultError) console.error(`${name} failed (${error.code}): ${error.message}`);
      else console.error(`${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
