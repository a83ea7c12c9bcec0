/** The oldest Node.js release line tokenvault supports (package.json `engines`: >=22). */
export const MINIMUM_NODE_MAJOR = 22;
/** The LTS lines it is tested on: CI runs the suite on 24 (the image's, .ci/node-version) and on the machine's. */
export const SUPPORTED_NODE_LINES = '22 and 24';

export interface NodeRuntime {
  version: string;
  major: number;
  supported: boolean;
}

export function nodeRuntime(version: string = process.version): NodeRuntime {
  const major = Number.parseInt(version.replace(/^v/, ''), 10);
  return { version, major, supported: major >= MINIMUM_NODE_MAJOR };
}

/**
 * On an unsupported Node.js the local stack says so once, first, in one line of its own. The
 * AWS SDK would say it again, in ten lines, in the middle of the start summary.
 */
export function quietSdkNodeVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}
