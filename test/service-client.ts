import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';

/** A client of the REST API as a user's script would be: fetch, multipart uploads, SSE. */
export class ServiceClient {
  constructor(
    readonly baseUrl: string,
    readonly key: string,
  ) {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.key}`,
        ...(body !== undefined && !(body instanceof FormData) ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: body instanceof FormData ? body : JSON.stringify(body) } : {}),
    });
    const type = response.headers.get('content-type') ?? '';
    // biome-ignore lint/suspicious/noExplicitAny: a test reads whatever fields the API documents.
    const json: any = type.includes('json') ? await response.json() : undefined;
    return { status: response.status, headers: response.headers, json, type };
  }

  /** multipart/form-data with text fields and files (field → paths), the files streamed from disk. */
  async upload(path: string, fields: Record<string, string>, files: Record<string, string[]>) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    for (const [field, paths] of Object.entries(files))
      for (const p of paths) form.append(field, await openAsBlob(p), basename(p));
    return this.request('POST', path, form);
  }

  /** Server-sent events until the stream ends: [{event, id, data}]. */
  async events(path: string, onEvent?: (e: { event: string; id?: string; data: unknown }) => void) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      headers: { authorization: `Bearer ${this.key}` },
    });
    if (!response.ok || !response.body) throw new Error(`SSE ${path}: HTTP ${response.status}`);
    const events: { event: string; id?: string; data: unknown }[] = [];
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const fields = Object.fromEntries(
          block
            .split('\n')
            .filter((l) => l && !l.startsWith(':'))
            .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trimStart()]),
        );
        if (!fields.data) continue;
        const e = { event: fields.event ?? 'message', id: fields.id, data: JSON.parse(fields.data) };
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
