import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';

export interface ServerSentEvent {
  event: string;
  id?: string;
  data: unknown;
}

/** One event of a text/event-stream (the text between two blank lines); undefined for comments and `retry:`. */
export function parseEvent(block: string): ServerSentEvent | undefined {
  const fields = Object.fromEntries(
    block
      .split('\n')
      .filter((l) => l && !l.startsWith(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trimStart()]),
  );
  if (!fields.data) return undefined;
  return { event: fields.event ?? 'message', id: fields.id, data: JSON.parse(fields.data) };
}

/** A client of the REST API as a user's script would be: fetch, multipart uploads, SSE. */
export class ServiceClient {
  constructor(
    readonly baseUrl: string,
    readonly key: string,
  ) {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    return this.send(path, {
      method,
      headers: {
        ...(body !== undefined && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: body instanceof FormData ? body : JSON.stringify(body) } : {}),
    });
  }

  private async send(path: string, init: RequestInit) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${this.key}`, ...(init.headers as Record<string, string>) },
    });
    const type = response.headers.get('content-type') ?? '';
    // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever fields the API documents.
    const json: any = type.includes('json') ? await response.json() : undefined;
    return { status: response.status, headers: response.headers, json, type };
  }

  /**
   * multipart/form-data with text fields and files (field → paths), the files streamed from disk. Framed by hand:
   * Node 20's `fs.openAsBlob` reports a file of over 4 GiB as its size modulo 2^32, so FormData cannot carry one.
   */
  async upload(path: string, fields: Record<string, string>, files: Record<string, string[]>) {
    const boundary = `evop-${randomBytes(12).toString('hex')}`;
    const head = (disposition: string) =>
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; ${disposition}\r\n\r\n`);
    async function* parts() {
      for (const [name, value] of Object.entries(fields)) {
        yield head(`name="${name}"`);
        yield Buffer.from(`${value}\r\n`);
      }
      for (const [name, paths] of Object.entries(files))
        for (const p of paths) {
          yield head(`name="${name}"; filename="${basename(p)}"`);
          yield* createReadStream(p);
          yield Buffer.from('\r\n');
        }
      yield Buffer.from(`--${boundary}--\r\n`);
    }
    return this.send(path, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.toWeb(Readable.from(parts())) as never,
      duplex: 'half',
    } as RequestInit);
  }

  /** Server-sent events until the stream ends: [{event, id, data}]. */
  async events(path: string, onEvent?: (e: ServerSentEvent) => void) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      headers: { authorization: `Bearer ${this.key}` },
    });
    if (!response.ok || !response.body) throw new Error(`SSE ${path}: HTTP ${response.status}`);
    const events: ServerSentEvent[] = [];
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const e = parseEvent(block);
        if (!e) continue;
        events.push(e);
        onEvent?.(e);
      }
    }
    return events;
  }

  async waitFor(jobId: string, done: (job: Record<string, unknown>) => boolean, timeoutMs = 600_000) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const { json } = await this.request('GET', `/v1/jobs/${jobId}`);
      if (done(json)) return json as Record<string, unknown> & { status: string };
      if (Date.now() > until) throw new Error(`job ${jobId} still ${json.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
