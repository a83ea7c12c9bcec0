import type { FastifyBaseLogger } from 'fastify';

/** What approvers are told about a new request: never tokens or values. */
export interface ApprovalNotice {
  event: 'reveal_request.created';
  id: string;
  requester: string;
  purpose: string;
  ticket: string | null;
  field_counts: Record<string, number>;
  expires_at: string;
}

export type ApprovalNotifier = (notice: ApprovalNotice) => void;

/**
 * POSTs each new request to a webhook (chat, paging) so approvers learn about it. Best effort:
 * a failing webhook is logged and counted, never blocks or fails the request.
 */
export function webhookNotifier(url: string | undefined, logger: FastifyBaseLogger, onResult: (ok: boolean) => void, timeoutMs = 5_000): ApprovalNotifier {
  if (url === undefined) return () => undefined;
  return (notice) => {
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(notice),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    }).then(
      (response) => {
        onResult(response.ok);
        if (!response.ok) logger.warn({ status: response.status, requestId: notice.id }, 'approval webhook refused the notice');
      },
      (error: unknown) => {
        onResult(false);
        logger.warn({ err: error, requestId: notice.id }, 'approval webhook unreachable');
      },
    );
  };
}
