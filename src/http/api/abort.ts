// Quay answers some failures outside the ApiError envelope: flask-restful's abort(code, message=…)
// and a few handlers that return {"message": …} directly (anonymous protection, read-only mode,
// /user/initialize). Throwing this keeps those bodies byte-compatible.
export class PlainError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'PlainError';
    this.status = status;
    this.body = { message, ...extra };
  }
}

/** Werkzeug's NotFound description: the body of Quay's bare abort(404) inside a handler. */
export const NOT_FOUND_MESSAGE = 'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.';

export const READONLY_MESSAGE = 'System is currently read-only. Pulls will succeed but all write operations are currently suspended.';
