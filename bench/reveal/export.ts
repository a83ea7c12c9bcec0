/**
 * Audit export clients, run in a child process of their own (like the load generator) so
 * reading and counting the NDJSON does not share the server's event loop. Receives
 * `{ url, headers, clients }`, starts that many clients that each download GET /audit/export to
 * the end, again and again (a refused one, 429 export_busy, tries again a second later), until
 * it receives `stop`; then reports what they did. It answers the job once the first bytes of an
 * export arrived (the export process is started and streaming), so the measured load runs
 * against an export that is really running.
 */
export interface ExportJob {
  url: string;
  headers: Record<string, string>;
  clients: number;
}

export interface ExportReport {
  completed: number;
  refused: number;
  failed: number;
  lines: number;
  bytes: number;
  refusalCodes: string[];
}

let stopping: AbortController | undefined;
let running: Promise<ExportReport> | undefined;
let onFirstBytes: (() => void) | undefined;

async function client(job: ExportJob, signal: AbortSignal, report: ExportReport): Promise<void> {
  while (!signal.aborted) {
    try {
      const response = await fetch(job.url, { headers: job.headers, signal });
      if (response.status !== 200) {
        report.refused += 1;
        const code = ((await response.json().catch(() => ({}))) as { error?: { code?: string } }).error?.code ?? String(response.status);
        if (!report.refusalCodes.includes(code)) report.refusalCodes.push(code);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        continue;
      }
      const reader = response.body?.getReader();
      for (;;) {
        const chunk = await reader?.read();
        if (chunk === undefined || chunk.done) break;
        report.bytes += chunk.value.byteLength;
        onFirstBytes?.();
        for (const byte of chunk.value) if (byte === 10) report.lines += 1;
      }
      report.completed += 1;
    } catch {
      if (!signal.aborted) report.failed += 1;
    }
  }
}

process.on('message', (message: ExportJob | 'stop') => {
  if (message === 'stop') {
    stopping?.abort();
    void running?.then((report) => process.send?.(report));
    return;
  }
  stopping = new AbortController();
  const report: ExportReport = { completed: 0, refused: 0, failed: 0, lines: 0, bytes: 0, refusalCodes: [] };
  const signal = stopping.signal;
  const started = setTimeout(() => onFirstBytes?.(), 120_000);
  onFirstBytes = () => {
    onFirstBytes = undefined;
    clearTimeout(started);
    process.send?.({ started: report.bytes > 0 || report.completed > 0 });
  };
  running = Promise.all(Array.from({ length: message.clients }, () => client(message, signal, report))).then(() => report);
});
process.send?.({ ready: true });
