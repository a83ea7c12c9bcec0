/** A listening port and the settings that choose it, so a failure can name the fix. */
export interface ListenTarget {
  /** The setting of the port, e.g. PORT, METRICS_PORT, LOCAL_SQS_PORT. */
  setting: string;
  port: number;
  host: string;
  /** The setting of the address, when there is one (HOST, METRICS_HOST). */
  hostSetting?: string;
}

/**
 * A failed listen() as one sentence that names the setting to change, like the embedded
 * PostgreSQL's port message; undefined when the error is not about the address or port.
 */
export function describeListenFailure(error: unknown, target: ListenTarget): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return `port ${target.port} is in use by another program: set ${target.setting} to a free port (e.g. ${target.setting}=${suggestedPort(target.port)})`;
    case 'EADDRNOTAVAIL':
      return `${target.host} is not an address of this machine${target.hostSetting === undefined ? '' : `: set ${target.hostSetting} to one of its addresses (127.0.0.1, or 0.0.0.0 for every interface)`}`;
    case 'EACCES':
      return `port ${target.port} needs privileges this process does not have (ports below 1024 are reserved for root): set ${target.setting} to a port from 1024 up`;
    default:
      return undefined;
  }
}

/** The busy ports of several settings in one sentence, so a user fixes them all at once. */
export function describeBusyPorts(busy: readonly ListenTarget[]): string {
  if (busy.length === 1 && busy[0] !== undefined) return describeListenFailure({ code: 'EADDRINUSE' }, busy[0]) ?? '';
  const list = busy.map((target) => `${target.port} (${target.setting})`).join(', ');
  const example = busy.map((target) => `${target.setting}=${suggestedPort(target.port)}`).join(' ');
  return `ports ${list} are in use by other programs: set each to a free port (e.g. ${example})`;
}

function suggestedPort(port: number): number {
  return port >= 65_000 ? 10_000 + (port % 1000) : port + 100;
}
