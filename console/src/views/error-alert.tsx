/** The one way a view shows what went wrong: announced to screen readers, nothing when there is no error. */
export function ErrorAlert({ error }: { error: string | null }) {
  return error === null ? null : (
    <p role="alert" class="error">
      {error}
    </p>
  );
}
