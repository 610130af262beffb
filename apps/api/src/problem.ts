import { UserError } from '@evop/config';
import { isUnavailableError } from '@evop/db';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

/**
 * An error answered as application/problem+json (RFC 9457): `title` says what kind, `detail` names the field
 * and the reason.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

export const notFound = (what: string, id: string) =>
  new ApiError(404, 'Not Found', `${what} '${id}' does not exist`);
/** 429 with Retry-After: the limit's window ends in `ttlMs`. */
export const tooManyRequests = (detail: string, ttlMs: number) =>
  new ApiError(429, 'Too Many Requests', detail, {
    'retry-after': String(Math.max(1, Math.ceil(ttlMs / 1000))),
  });
/** 503 with Retry-After: the client may try again shortly. */
export const serviceUnavailable = (detail: string) =>
  new ApiError(503, 'Service Unavailable', detail, { 'retry-after': '5' });
export const invalid = (field: string, reason: string) =>
  new ApiError(422, 'Unprocessable Content', `${field}: ${reason}`);

/** The JSON schema of a problem document, for the routes' documented error responses. */
export const problemSchema = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
  },
} as const;

// Fastify's own errors a client can cause, by code: the status it gives them and a title.
const CLIENT_ERRORS: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Unsupported Media Type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'Content Too Large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'Bad Request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'Bad Request',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'Unsupported Media Type',
  FST_REQ_FILE_TOO_LARGE: 'Content Too Large',
  FST_FILES_LIMIT: 'Content Too Large',
  FST_PARTS_LIMIT: 'Content Too Large',
  FST_ERR_VALIDATION: 'Bad Request',
};

/**
 * Every error becomes a problem document; a 5xx never shows its stack or message to the client, and no detail
 * shows the server's paths (`hidePaths`: a reader's message names the staged file, a store error its folder).
 */
export function problemHandler(app: FastifyInstance, hidePaths: (text: string) => string): void {
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send({
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: `no route ${request.method} ${request.url}`,
      }),
  );
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let status = 500;
    let title = 'Internal Server Error';
    let detail = 'the server failed; the error is logged';
    if (error instanceof ApiError) {
      ({ status, title, detail } = error);
      reply.headers(error.headers);
    } else if (hasZodFastifySchemaValidationErrors(error)) {
      const issue = error.validation[0]!;
      const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
      const where = error.validationContext === 'body' ? '' : `${error.validationContext}.`;
      status = 400;
      title = 'Bad Request';
      detail = `${where}${path || '(root)'}: ${issue.message}`;
    } else if (error.code && CLIENT_ERRORS[error.code]) {
      status = error.statusCode && error.statusCode < 500 ? error.statusCode : 400;
      title = CLIENT_ERRORS[error.code]!;
      detail = error.message;
    } else if (error instanceof UserError) {
      // Input no route mapped to a field of its own: still the client's to fix, and its message says what.
      status = 422;
      title = 'Unprocessable Content';
      detail = error.message;
    } else if (isUnavailableError(error)) {
      const unavailable = serviceUnavailable('the database or the queue cannot be reached; retry shortly');
      ({ status, title, detail } = unavailable);
      reply.headers(unavailable.headers);
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      status = error.statusCode;
      title = 'Bad Request';
      detail = error.message;
    }
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    reply
      .code(status)
      .type('application/problem+json')
      .send({ type: 'about:blank', title, status, detail: hidePaths(detail) });
  });
}
