/**
 * The fields every audited request carries: the tokens it is about, why (purpose, 10–500
 * characters, as the API requires) and the case it belongs to (ticket, optional).
 */
export function RequestFields(props: {
  tokensLabel: string;
  tokens: string;
  setTokens: (value: string) => void;
  purpose: string;
  setPurpose: (value: string) => void;
  ticket: string;
  setTicket: (value: string) => void;
}) {
  return (
    <>
      <label>
        {props.tokensLabel}
        <textarea name="tokens" rows={5} value={props.tokens} onInput={(e) => props.setTokens(e.currentTarget.value)} required spellcheck={false} />
      </label>
      <label>
        Purpose
        <input name="purpose" value={props.purpose} onInput={(e) => props.setPurpose(e.currentTarget.value)} required minLength={10} maxLength={500} autoComplete="off" />
      </label>
      <label>
        Ticket
        <input name="ticket" value={props.ticket} onInput={(e) => props.setTicket(e.currentTarget.value)} maxLength={128} autoComplete="off" />
      </label>
    </>
  );
}
