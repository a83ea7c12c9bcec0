/**
 * The reveal-api's public face: everything code outside services/reveal-api may use (its
 * container entry point main.ts, the local stack, the CLI, the benchmarks). The rest of this
 * directory is private; eslint.config.js refuses imports that reach past this file.
 *
 * Settings → running API: loadRevealConfig(env), then startRevealApi(config, deps) with a
 * database and keys from lib/runtime. buildRevealApp is the same app without the listen
 * (benchmarks inject or listen themselves).
 */
export { DEFAULT_POLICY_FILE, JWT_KEY_SOURCES, loadRevealConfig, type AuditCheckpointConfig, type RevealConfig } from './config.js';
export { buildRevealApp, type RevealApp, type RevealDeps } from './app.js';
export { revealListenTarget, startRevealApi, type RevealApiDeps } from './start.js';
/** The roles policy (POLICY_FILE): the CLI and the local identity provider list its roles. */
export { Policy } from './policy/policy.js';
// The local stack gives its witness the log's verifier keys, and warns when the published
// checkpoints belong to a log its database does not hold.
export { createNoteSigners } from './audit/checkpoints/note-signers.js';
export { FileCheckpointSink } from './audit/checkpoints/sinks.js';
