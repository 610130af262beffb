import { networkReason, Unavailable, UserError, withRetries } from '@evop/config';
import type { Credentials } from './credentials.ts';

/** A request the service refused as bad input (4xx): printed as one line with its status, exit code 2. */
export class ApiRefusal extends UserError {
  override readonly name = 'ApiRefusal';
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`${status} ${detail}`);
  }
}

/** The service failed (5xx) or could not be reached: worth another try. */
export class ApiUnavailable extends Unavailable {
  override readonly name = 'ApiUnavailable';
}

export interface RequestOptions {
  body?: RequestInit['body'];
  headers?: Record<string, string>;
  /** Whether the request may be sent again after a network error or a 5xx (it is idempotent). */
  retry?: boolean;
  signal?: AbortSignal;
  /** Says that a retry is coming (to stderr by default). */
  onRetry?: (reason: string, delayMs: number) => void;
}

/** The detail of a problem document, or the body's first line for an answer that is not one. */
async function problemDetail(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const problem = JSON.parse(text) as { detail?: string; title?: string };
    return problem.detail ?? problem.title ?? response.statusText;
  } catch {
    return text.split('\n')[0] || response.statusText;
  }
}

/** The REST API of an evop service, with an API key: errors become ApiRefusal (4xx) or ApiUnavailable. */
export class ApiClient {
  readonly url: string;
  private readonly key: string;

  constructor(credentials: Credentials) {
    this.url = credentials.url;
    this.key = credentials.key;
  }

  /** One request; a 2xx response, else ApiRefusal (4xx) or ApiUnavailable (5xx, network). */
  async once(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...options.headers },
        signal: options.signal,
        ...(options.body !== undefined ? { body: options.body, duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      throw new ApiUnavailable(`cannot reach ${this.url} (${networkReason(err)})`);
    }
    if (response.ok) return response;
    const detail = await problemDetail(response);
    if (response.status < 500) throw new ApiRefusal(response.status, detail);
    throw new ApiUnavailable(`${this.url} answered ${response.status} ${detail}`);
  }

  /** A request, sent again after a network error or a 5xx while `options.retry` says it may be. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const onRetry =
      options.onRetry ??
      ((reason, ms) => process.stderr.write(`evop: ${reason}; trying again in ${ms / 1000} s\n`));
    return withRetries(() => this.once(method, path, options), {
      ...(options.retry ? {} : { delaysMs: [] }),
      onRetry,
    });
  }

  /** A request whose answer is JSON. GETs are retried; other methods when `options.retry` says so. */
  async json<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, {
      retry: method === 'GET',
      ...options,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
    });
    return (await response.json()) as T;
  }
}
