// Domain errors. The model throws these; each HTTP face (/v2 OCI errors, /api/v1 ApiError)
// maps them to its own envelope in one place. "Not found" that is a normal answer is returned as
// a union by the model functions instead.
export type DomainErrorCode =
  | 'not_found' // generic missing thing
  | 'name_unknown' | 'name_invalid' | 'manifest_unknown' | 'manifest_invalid' | 'manifest_blob_unknown'
  | 'blob_unknown' | 'blob_upload_unknown' | 'blob_upload_invalid' | 'digest_invalid' | 'size_invalid'
  | 'range_invalid' | 'tag_invalid' | 'unsupported' | 'denied' | 'unauthorized' | 'readonly'
  | 'invalid_request' | 'conflict' | 'tag_immutable' | 'quota_exceeded' | 'too_many_requests';

export class DomainError extends Error {
  readonly code: DomainErrorCode;
  readonly detail?: unknown;
  constructor(code: DomainErrorCode, message: string, detail?: unknown) {
    super(message);
    this.code = code;
    this.detail = detail;
    this.name = 'DomainError';
  }
}

export const fail = (code: DomainErrorCode, message: string, detail?: unknown): never => {
  throw new DomainError(code, message, detail);
};
