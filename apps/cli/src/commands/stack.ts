import { CliError } from '../cli-error.ts';
import type { RawOptions } from '../prune-spec.ts';
import { Stack } from '../stack.ts';

/** `evop stack [--workers N] [--port P]`: the service on this machine until Ctrl-C. */
export async function stack(options: RawOptions): Promise<number> {
  const workers = Number(options.workers ?? 2);
  if (!Number.isInteger(workers) || workers < 0)
    throw new CliError(`--workers: expected an integer ≥ 0, got '${options.workers}'`);
  const port = Number(options.port ?? process.env.PORT ?? 3000);
  const running = await Stack.start({ workers, port });
  process.stderr.write(
    `evop stack: api on ${running.apiUrl} (docs at ${running.apiUrl}/docs), 1 coordinator, ${workers} workers; ` +
      'create a key with: npm run evop -- admin create-key --tenant NAME\n',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.stop();
  return 0;
}
