import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { PruneReport } from '@evop/pipeline';
import { frontText, reportTable } from '@evop/pipeline';
import { Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { integer, type RawOptions, run } from '../command.ts';
import { modelName } from '../model-source.ts';
import { searchSpecOf } from '../prune-spec.ts';
import { ApiClient, ApiRefusal } from '../remote/api-client.ts';
import { credentialsPath, loadCredentials, saveCredentials } from '../remote/credentials.ts';
import { downloadFiles, type ResultFile } from '../remote/download.ts';
import { followJob } from '../remote/job-events.ts';
import { externalDataOf, tokenizerFilesOf, uploadFiles } from '../remote/upload.ts';
import { WatchProgress } from '../remote/watch-progress.ts';
import { specOptions } from './prune.ts';

/** A job as the API shows it (GET /v1/jobs/:id), the fields this command reads. */
interface JobView {
  id: string;
  status: string;
  stage: string | null;
  progress: number;
  best: { strategy: string; mask: string; fitness: number } | null;
  error: string | null;
}

/** Exit code of `watch` for a job that was cancelled: as for a run that was stopped. */
const EXIT_CANCELLED = 130;

const DEFAULT_URL = 'http://127.0.0.1:3000';

const client = () => new ApiClient(loadCredentials());
const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const jsonOption = (what: string) => new Option('--json', `print ${what} as JSON`);
const path = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;

/** The API key: typed at a prompt that does not echo it, or read from a pipe (`… | evop remote login`). */
async function readKey(): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) text += chunk;
    return text.trim();
  }
  process.stderr.write('API key: ');
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((done, fail) => {
      let typed = '';
      input.on('data', (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n') return done(typed.trim());
          if (char === '\u0003') return fail(new CliError('login: stopped'));
          typed = char === '\u007f' ? typed.slice(0, -1) : typed + char;
        }
      });
    });
  } finally {
    input.setRawMode(false);
    input.removeAllListeners('data');
    input.pause();
    process.stderr.write('\n');
  }
}

async function login(options: RawOptions): Promise<number> {
  const url = ((options.url as string | undefined) ?? process.env.EVOP_API_URL ?? DEFAULT_URL).replace(
    /\/+$/,
    '',
  );
  if (!/^https?:\/\/[^/]/.test(url)) throw new CliError(`--url: '${url}' is not an http(s) address`);
  const key = (options.key as string | undefined) ?? (await readKey());
  if (!key) throw new CliError('--key: empty (give it, type it at the prompt or pipe it in)');
  try {
    await new ApiClient({ url, key }).json('GET', '/v1/jobs?limit=1');
  } catch (err) {
    if (err instanceof ApiRefusal && err.status === 401)
      throw new CliError(`--key: ${url} refuses it (${err.detail})`);
    throw err;
  }
  const file = credentialsPath();
  saveCredentials({ url, key }, file);
  process.stderr.write(`logged in to ${url}; the key is kept in ${file}\n`);
  return 0;
}

/** A list of rows as aligned columns. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `models` and `datasets`: upload one, list them. */
function uploadsCommand(kind: 'models' | 'datasets'): Command {
  const command = new Command(kind).summary(`upload ${kind} to the service, list them`);
  const upload = command
    .command('upload')
    .summary(`upload a ${kind === 'models' ? 'model' : 'dataset'}; prints its id`)
    .option('--name <name>', `a name to know it by (default: from the file)`);
  if (kind === 'models')
    upload
      .description(
        'Uploads an ONNX model, the external-data files it names (found beside it) and its tokenizer, streamed ' +
          'with a progress bar; the service checks it (layer discovery) and prints its id.',
      )
      .argument('<model>', 'the .onnx file (its external data beside it, under the names it gives)')
      .option(
        '--tokenizer <file>',
        'tokenizer.json or a llama2.c .bin (default: one beside the model; its tokenizer_config.json is sent ' +
          'along); repeat to send tokenizer_config.json explicitly',
        (value: string, previous: string[] = []) => [...previous, value],
      );
  else
    upload
      .description(
        'Uploads a text corpus, streamed with a progress bar; the service checks it and prints its id.',
      )
      .argument('<file>', 'plain text (documents separated by blank lines) or JSONL with a "text" per line')
      .addOption(
        new Option('--format <format>', 'how the file is read (default: from its name)').choices([
          'text',
          'jsonl',
        ]),
      );
  upload.addOption(jsonOption(`the ${kind === 'models' ? 'model' : 'dataset'}`)).action(
    run(async ([file], options) => {
      const api = client();
      const source = resolve(file!);
      const name = (options.name as string | undefined) ?? modelName(source);
      const files =
        kind === 'models'
          ? [
              { field: 'model', path: source },
              ...externalDataOf(source).map((path) => ({ field: 'data', path })),
              ...tokenizerFilesOf(source, (options.tokenizer as string[] | undefined) ?? []).map((path) => ({
                field: 'tokenizer',
                path: resolve(path),
              })),
            ]
          : [{ field: 'file', path: source }];
      const fields = { name, ...(options.format ? { format: options.format as string } : {}) };
      const created = await uploadFiles<{ id: string }>(api, `/v1/${kind}`, fields, files);
      if (options.json) printJson(created);
      else process.stdout.write(`${created.id}\n`);
      return 0;
    }),
  );
  command
    .command('list')
    .summary(`list your ${kind}`)
    .description(`Lists your ${kind}, newest first.`)
    .addOption(jsonOption(`the ${kind}`))
    .action(
      run(async (_args, options) => {
        const listed = await client().json<
          Record<string, { id: string; name: string; bytes: number; createdAt: string }[]>
        >('GET', `/v1/${kind}`);
        if (options.json) printJson(listed);
        else
          process.stdout.write(
            `${table(
              ['id', 'name', 'MiB', 'created'],
              listed[kind]!.map((r) => [r.id, r.name, (r.bytes / 2 ** 20).toFixed(1), r.createdAt]),
            )}\n`,
          );
        return 0;
      }),
    );
  return command;
}

/** The job's line for people: status, stage and progress, best fitness so far. */
function jobLine(job: JobView): string {
  const stage = job.stage ? ` ${job.stage} ${Math.round(100 * job.progress)}%` : '';
  const best = job.best ? `, best ${job.best.fitness.toFixed(4)} (${job.best.strategy})` : '';
  return `${job.id}  ${job.status}${stage}${best}`;
}

/** Follows a job to its end; the exit code: 0 succeeded, 1 failed, 130 cancelled. */
async function watch(api: ApiClient, id: string, json: boolean): Promise<number> {
  const progress = new WatchProgress();
  let final: Awaited<ReturnType<typeof followJob>>;
  try {
    final = await followJob(api, id, {
      onEvent: (event) => progress.event(event),
      onReconnect: (reason, ms) => progress.note(`${reason}; reconnecting in ${ms / 1000} s`),
    });
  } finally {
    progress.stop();
  }
  if (json) printJson(await api.json('GET', path(id)));
  if (final.status === 'succeeded') {
    process.stderr.write(`job ${id} succeeded; download it with: evop remote download ${id}\n`);
    return 0;
  }
  if (final.status === 'cancelled') {
    process.stderr.write(`evop: job ${id} was cancelled\n`);
    return EXIT_CANCELLED;
  }
  process.stderr.write(`evop: job ${id} failed: ${final.error ?? 'no reason given'}\n`);
  return 1;
}

const WATCH_EXITS =
  'Exit codes: 0 the job succeeded, 1 it failed (its error printed), 130 it was cancelled, 2 bad input.';

function submitCommand(): Command {
  const command = new Command('submit')
    .summary('submit a pruning job (the spec flags of evop prune)')
    .description(
      "Submits a pruning job for an uploaded model and dataset, with the same spec flags (and defaults) as 'evop " +
        "prune'; prints the job id. The submission carries an Idempotency-Key: retried after a network error, it " +
        'gives the same job, never a second one.',
    )
    .requiredOption('--model <id>', 'the model (evop remote models upload / list)')
    .requiredOption('--dataset <id>', 'the corpus (evop remote datasets upload / list)');
  for (const option of specOptions()) command.addOption(option);
  return command
    .option(
      '--idempotency-key <key>',
      'submit with this key: the same key and spec give the same job (default: a new random key)',
    )
    .option('--watch', 'then follow the job as `evop remote watch` does, and exit as it does')
    .addOption(jsonOption('the job'))
    .addHelpText('after', `\nWith --watch: ${WATCH_EXITS}`)
    .action(
      run(async (_args, options) => {
        const api = client();
        const body = { modelId: options.model, datasetId: options.dataset, spec: searchSpecOf(options) };
        const key = (options['idempotency-key'] as string | undefined) ?? randomUUID();
        let job: JobView;
        try {
          job = await api.json<JobView>('POST', '/v1/jobs', body, {
            retry: true,
            headers: { 'idempotency-key': key },
          });
        } catch (err) {
          if (!(err instanceof ApiRefusal))
            process.stderr.write(`evop: to try again without a second job: --idempotency-key ${key}\n`);
          throw err;
        }
        if (options.json && !options.watch) printJson(job);
        else process.stdout.write(`${job.id}\n`);
        return options.watch ? watch(api, job.id, options.json === true) : 0;
      }),
    );
}

export function remoteCommand(): Command {
  const remote = new Command('remote')
    .summary('drive an evop service: upload, submit, watch, download')
    .description(
      'A client of an evop service: log in once (or set EVOP_API_URL and EVOP_API_KEY), upload a model and a ' +
        'corpus, submit a job, watch it and download the pruned model and its report. A refusal by the service ' +
        "is printed as one line with its status ('evop: 422 spec.seqLen: …') and exits with 2; a service or " +
        'network failure that retries do not cure exits with 1.',
    );

  remote
    .command('login')
    .summary('check an API key and keep it with the service address')
    .description(
      `Checks an API key against the service and keeps the address and key in ${credentialsPath()} (readable by ` +
        'you alone). EVOP_API_URL and EVOP_API_KEY, when set, are used instead of what it keeps.',
    )
    .option('--url <url>', `the API's address (default: EVOP_API_URL, else ${DEFAULT_URL})`)
    .option(
      '--key <key>',
      'the API key (default: typed at a prompt that does not show it, or read from stdin)',
    )
    .action(run(async (_args, options) => login(options)));

  remote.addCommand(uploadsCommand('models'));
  remote.addCommand(uploadsCommand('datasets'));
  remote.addCommand(submitCommand());

  remote
    .command('jobs')
    .summary('list your jobs')
    .description('Lists your jobs, newest first: id, status, stage and progress, best fitness so far.')
    .addOption(
      new Option('--status <status>', 'only jobs with this status').choices([
        'queued',
        'running',
        'succeeded',
        'failed',
        'cancelled',
      ]),
    )
    .option('--limit <n>', 'at most this many', integer(1), 50)
    .addOption(jsonOption('the jobs'))
    .action(
      run(async (_args, options) => {
        const query = new URLSearchParams({ limit: String(options.limit) });
        if (options.status) query.set('status', options.status as string);
        const { jobs } = await client().json<{ jobs: JobView[] }>('GET', `/v1/jobs?${query}`);
        if (options.json) printJson({ jobs });
        else for (const job of jobs) process.stdout.write(`${jobLine(job)}\n`);
        return 0;
      }),
    );

  remote
    .command('status')
    .summary("a job's status, progress and, once done, its results")
    .description("A job's status, stage, progress and best fitness; once it succeeded, its comparison table.")
    .argument('<job>', 'the job id')
    .addOption(jsonOption('the job'))
    .action(
      run(async ([id], options) => {
        const api = client();
        const job = await api.json<JobView>('GET', path(id!));
        if (options.json) {
          printJson(job);
          return 0;
        }
        process.stdout.write(`${jobLine(job)}\n`);
        if (job.error) process.stdout.write(`error: ${job.error}\n`);
        if (job.status === 'succeeded') {
          const report = await api.json<PruneReport>('GET', `${path(id!)}/report.json`);
          const front = frontText(report);
          process.stdout.write(
            `\n${reportTable(report)}\n${front ? `\nquality–speed front:\n${front}\n` : ''}`,
          );
        }
        return 0;
      }),
    );

  remote
    .command('watch')
    .summary('follow a job until it ends; the exit code says how')
    .description(
      "Follows a job's progress (stage, generation, best fitness) until it ends, reconnecting when the connection " +
        'drops or the API restarts.',
    )
    .argument('<job>', 'the job id')
    .addOption(jsonOption('the job once it has ended'))
    .addHelpText('after', `\n${WATCH_EXITS}`)
    .action(run(async ([id], options) => watch(client(), id!, options.json === true)));

  remote
    .command('cancel')
    .summary('cancel a job')
    .description('Cancels a job: a queued one at once, a running one within a generation.')
    .argument('<job>', 'the job id')
    .addOption(jsonOption('the job'))
    .action(
      run(async ([id], options) => {
        const job = await client().json<JobView>('POST', `${path(id!)}/cancel`, undefined, { retry: true });
        if (options.json) printJson(job);
        else process.stderr.write(`cancel requested: ${jobLine(job)}\n`);
        return 0;
      }),
    );

  remote
    .command('download')
    .summary("download a job's pruned model and reports, checked against their sha256")
    .description(
      "Downloads a succeeded job's pruned model (model.onnx and its external data), report.json and report.html, " +
        'each checked against the sha256 the service lists. Files are moved into place only once all are intact: ' +
        'a failed or mismatched download writes nothing and exits non-zero naming the file.',
    )
    .argument('<job>', 'the job id')
    .option('--out <dir>', 'the folder to write to (default: ./evop-<job id>)')
    .addOption(jsonOption('the files written, with their sha256'))
    .action(
      run(async ([id], options) => {
        const api = client();
        const { files } = await api.json<{ files: ResultFile[] }>('GET', `${path(id!)}/files`);
        const out = resolve((options.out as string | undefined) ?? `evop-${id}`);
        const written = await downloadFiles(api, files, out);
        if (options.json) printJson({ files: files.map((f, i) => ({ ...f, path: written[i] })) });
        else process.stdout.write(`${written.join('\n')}\n`);
        return 0;
      }),
    );
  return remote;
}
