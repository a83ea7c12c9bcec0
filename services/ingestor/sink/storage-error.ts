import { describeError, isTransient, TokenvaultError } from '../../../lib/errors.js';

/** A transient storage failure: the batch stays on the queue and comes back. */
export class StorageUnavailableError extends TokenvaultError {
  constructor(cause: unknown) {
    super('storage_unavailable', `database or key provider unavailable: ${describeError(cause)}`, { cause, transient: true });
  }
}

/** Key-provider or key-store failures while preparing become StorageUnavailableError when transient. */
export async function guard<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isTransient(error)) throw new StorageUnavailableError(error);
    throw error;
  }
}
