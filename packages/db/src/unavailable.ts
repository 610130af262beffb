const CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTCONN',
  '57P01',
  '57P03',
  'P1001',
  'P1017',
]);
const MESSAGES =
  /ECONNREFUSED|ECONNRESET|Connection is closed|Connection terminated|Can't reach database server|terminating connection due to administrator command|the database system is (starting up|shutting down)/;

/**
 * Whether an error (or one it wraps) says that PostgreSQL or Redis cannot be reached right now: the request or
 * the job can be tried again once it is back, rather than failed.
 */
export function isUnavailableError(error: unknown): boolean {
  let e = error as { code?: unknown; cause?: unknown; message?: unknown } | undefined;
  for (let depth = 0; e && depth < 6; depth++) {
    if (typeof e.code === 'string' && CODES.has(e.code)) return true;
    if (typeof e.message === 'string' && MESSAGES.test(e.message)) return true;
    e = e.cause as typeof e;
  }
  return false;
}
