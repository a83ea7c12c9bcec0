import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU seconds used by processes, from /proc (Linux; elsewhere every reading is undefined). On a
 * shared machine wall time says little, CPU time much more: a phase's CPU per process shows what
 * it would cost on a quiet one, and which process is the limit.
 */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in seconds (children reaped by the process count too). */
  seconds: number;
}

function stat(pid: number | string): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: fields after its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const number = (index: number) => Number(fields[index] ?? 0);
    return { pid: Number(pid), ppid: number(1), seconds: (number(11) + number(12) + number(13) + number(14)) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** CPU seconds of `pid` and, with `children`, of its live child processes (PostgreSQL's backends). */
export function cpuSeconds(pid: number, children = false): number | undefined {
  const own = stat(pid);
  if (own === undefined) return undefined;
  if (!children) return own.seconds;
  let total = own.seconds;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = stat(entry);
    if (child?.ppid === pid) total += child.seconds;
  }
  return total;
}
