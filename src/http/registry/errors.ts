// The OCI error registry: every /v2 error is one of these descriptors, written by one function
// in the {"errors":[{code,message,detail}]} envelope.
import type { FastifyReply } from 'fastify';
import type { DomainErrorCode } from '../../model/errors.ts';

export const OCI_ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  TAG_IMMUTABLE: { status: 409, message: 'tag is immutable' },
  NOT_FOUND: { status: 404, message: 'not found' },
} as const;

export type OciCode = keyof typeof OCI_ERRORS;

export class OciError extends Error {
  readonly code: OciCode;
  readonly detail?: unknown;
  readonly status: number;
  constructor(code: OciCode, message?: string, detail?: unknown, status: number = OCI_ERRORS[code].status) {
    super(message ?? OCI_ERRORS[code].message);
    this.code = code;
    this.detail = detail;
    this.status = status;
    this.name = 'OciError';
  }
}

const FROM_DOMAIN: Record<DomainErrorCode, OciCode> = {
  not_found: 'NOT_FOUND',
  name_unknown: 'NAME_UNKNOWN',
  name_invalid: 'NAME_INVALID',
  manifest_unknown: 'MANIFEST_UNKNOWN',
  manifest_invalid: 'MANIFEST_INVALID',
  manifest_blob_unknown: 'MANIFEST_BLOB_UNKNOWN',
  blob_unknown: 'BLOB_UNKNOWN',
  blob_upload_unknown: 'BLOB_UPLOAD_UNKNOWN',
  blob_upload_invalid: 'BLOB_UPLOAD_INVALID',
  digest_invalid: 'DIGEST_INVALID',
  size_invalid: 'SIZE_INVALID',
  range_invalid: 'RANGE_INVALID',
  tag_invalid: 'TAG_INVALID',
  unsupported: 'UNSUPPORTED',
  denied: 'DENIED',
  unauthorized: 'UNAUTHORIZED',
  readonly: 'DENIED',
  invalid_request: 'MANIFEST_INVALID',
  conflict: 'DENIED',
  tag_immutable: 'TAG_IMMUTABLE',
  quota_exceeded: 'DENIED', // Quay's QuotaExceeded: 403 DENIED "Quota has been exceeded on namespace"
  too_many_requests: 'TOOMANYREQUESTS',
};

export function ociFromDomain(code: DomainErrorCode, message: string, detail?: unknown): OciError {
  const oci = FROM_DOMAIN[code];
  // Quay's TagImmutable keeps its fixed message and names the tag in detail.
  if (oci === 'TAG_IMMUTABLE') return new OciError(oci, undefined, detail);
  // Quay answers a write to a read-only registry or repository with 405 UNSUPPORTED-style denial;
  // clients show the message, so keep it.
  return new OciError(oci, message, detail);
}

export function sendOciError(reply: FastifyReply, err: OciError): FastifyReply {
  reply.header('Content-Type', 'application/json; charset=utf-8');
  return reply.code(err.status).send(JSON.stringify({ errors: [{ code: err.code, message: err.message, detail: err.detail ?? {} }] }));
}
