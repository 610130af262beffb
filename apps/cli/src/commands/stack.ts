import { Command } from 'commander';
import { integer, type RawOptions, run, serviceModule } from '../command.ts';

/** `evop stack [--workers N] [--port P]`: the service on this machine until Ctrl-C. */
async function stack(options: RawOptions): Promise<number> {
  const workers = options.workers as number;
  const port = (options.port as number | undefined) ?? Number(process.env.PORT ?? 3000);
  const { Stack } = await serviceModule(() => import('../stack.ts'));
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

export function stackCommand(): Command {
  return new Command('stack')
    .summary('run the service on this machine: the API, a coordinator and workers (Ctrl-C stops)')
    .description(
      'Runs the service against the PostgreSQL and Redis of DATABASE_URL / REDIS_URL (default: this machine).',
    )
    .option('--workers <n>', 'worker processes', integer(0), 2)
    .option('--port <port>', 'port of the API (default: PORT, else 3000)', integer(0))
    .action(run(async (_args, options) => stack(options)));
}
