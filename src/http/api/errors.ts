// Quay's ApiError envelope for /api/v1: {status, error_message, title, error_type, detail, type}.
import type { FastifyReply } from 'fastify';
import type { DomainErrorCode } from '../../model/errors.ts';

export const API_ERROR_TYPES = {
  invalid_request: { status: 400, title: 'invalid_request', description: 'The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.' },
  invalid_token: { status: 401, title: 'invalid_token', description: 'The access token provided is expired, revoked, malformed, or invalid for other reasons.' },
  insufficient_scope: { status: 403, title: 'insufficient_scope', description: 'The request requires higher privileges than provided by the access token.' },
  fresh_login_required: { status: 401, title: 'fresh_login_required', description: 'The action requires a fresh login to succeed.' },
  not_found: { status: 404, title: 'not_found', description: 'The resource was not found.' },
  exceeds_license: { status: 402, title: 'exceeds_license', description: 'The action was refused because the current license does not allow it.' },
  downstream_issue: { status: 520, title: 'downstream_issue', description: 'An error occurred in a downstream service.' },
  invalid_response: { status: 400, title: 'invalid_response', description: 'The response was found to be invalid.' },
  conflict: { status: 409, title: 'conflict', description: 'The request conflicts with the current state of the resource.' },
  tag_immutable: { status: 409, title: 'tag_immutable', description: 'The tag is immutable and cannot be modified or deleted.' },
  token_rotation_failed: { status: 500, title: 'token_rotation_failed', description: 'The token could not be rotated.' },
} as const;

export type ApiErrorType = keyof typeof API_ERROR_TYPES;

export class ApiError extends Error {
  readonly errorType: ApiErrorType;
  readonly status: number;
  readonly extra?: Record<string, unknown>;
  constructor(errorType: ApiErrorType, message: string, status: number = API_ERROR_TYPES[errorType].status, extra?: Record<string, unknown>) {
    super(message);
    this.errorType = errorType;
    this.status = status;
    this.extra = extra;
    this.name = 'ApiError';
  }
}

const FROM_DOMAIN: Partial<Record<DomainErrorCode, ApiErrorType>> = {
  not_found: 'not_found', name_unknown: 'not_found', manifest_unknown: 'not_found', blob_unknown: 'not_found',
  denied: 'insufficient_scope', unauthorized: 'invalid_token', conflict: 'conflict', tag_immutable: 'tag_immutable',
};

export function apiFromDomain(code: DomainErrorCode, message: string): ApiError {
  return new ApiError(FROM_DOMAIN[code] ?? 'invalid_request', message);
}

export function apiErrorBody(err: ApiError, baseUrl: string): Record<string, unknown> {
  return {
    status: err.status,
    error_message: err.message,
    title: err.errorType,
    error_type: err.errorType,
    detail: err.message,
    type: `${baseUrl}/api/v1/error/${err.errorType}`,
    ...(err.extra ?? {}),
  };
}

export function sendApiError(reply: FastifyReply, err: ApiError, baseUrl: string): FastifyReply {
  return reply.code(err.status).type('application/json').send(apiErrorBody(err, baseUrl));
}
