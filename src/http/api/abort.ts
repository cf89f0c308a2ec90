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

export const READONLY_MESSAGE = 'System is currently read-only. Pulls will succeed but all write operations are currently suspended.';
