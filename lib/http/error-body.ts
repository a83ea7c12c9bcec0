/** The one error body shape clients of every tokenvault HTTP endpoint can rely on. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}
