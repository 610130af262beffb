import { parseArgs } from 'node:util';
import { UserError } from '@evop/config';
import { CliError, userMessage } from './cli-error.ts';
import { admin } from './commands/admin.ts';
import { apply } from './commands/apply.ts';
import { evaluate } from './commands/evaluate.ts';
import { inspect } from './commands/inspect.ts';
import { prune } from './commands/prune.ts';
import { stack } from './commands/stack.ts';

const USAGE = `usage:
  evop prune --model <model.onnx | ckpt.bin> [--tokenizer tok] --data <file>... (--remove N | --sparsity F)
             [--granularity layer|sublayer] [--strategy evop|evopress|sleb|blockpruner|shortgpt|random|exhaustive]
             [--objective mean|cluster-balanced|worst-cluster] [--seed S] [--budget N] [--calibration N]
             [--held-out N] [--clusters K] [--sampling ccds|random] [--seq-len T] [--tasks arc-easy,piqa,…]
             [--task-limit N] [--baselines] [--out DIR] [--threads N] [--quiet]
  evop prune --resume DIR                  continue a stopped run, or complete the stages that failed
  evop apply <model> --mask <bits | mask.json> [--granularity layer|sublayer] [--out DIR]
                                           remove a mask's units from a model (another export of it, say)
  evop inspect <model> [--json]
  evop eval <model> [--tokenizer tok] [--data <file>...] [--tasks …] [--seq-len T] [--windows N]
  evop stack [--workers N] [--port P]      the service (api, coordinator, workers) on this machine
  evop admin create-key --tenant NAME      a new API key for the service

exit codes: 0 done; 1 evop failed; 2 bad input (the message names the flag); 3 the run finished and wrote
its model, mask and report, but a later stage failed (named on stderr; evop prune --resume completes it);
130 stopped (evop prune --resume continues)`;

const PRUNE_OPTIONS = {
  model: { type: 'string' },
  tokenizer: { type: 'string' },
  data: { type: 'string', multiple: true },
  remove: { type: 'string' },
  sparsity: { type: 'string' },
  granularity: { type: 'string' },
  strategy: { type: 'string' },
  objective: { type: 'string' },
  seed: { type: 'string' },
  budget: { type: 'string' },
  calibration: { type: 'string' },
  'held-out': { type: 'string' },
  clusters: { type: 'string' },
  sampling: { type: 'string' },
  'seq-len': { type: 'string' },
  tasks: { type: 'string' },
  'task-limit': { type: 'string' },
  baselines: { type: 'boolean' },
  out: { type: 'string' },
  threads: { type: 'string' },
  resume: { type: 'string' },
  quiet: { type: 'boolean' },
  windows: { type: 'string' },
  json: { type: 'boolean' },
  workers: { type: 'string' },
  port: { type: 'string' },
  tenant: { type: 'string' },
  mask: { type: 'string' },
} as const;

/** Runs one `evop` command line; returns the exit code (see USAGE). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 2;
    }
    let parsed: ReturnType<typeof parseArgs<{ options: typeof PRUNE_OPTIONS; allowPositionals: true }>>;
    try {
      parsed = parseArgs({ args: rest, options: PRUNE_OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw new CliError((err as Error).message.split('\n')[0]!);
    }
    const { values, positionals } = parsed;
    if (command === 'prune') return await prune(values);
    if (command === 'apply') return await apply(positionals, values);
    if (command === 'inspect') return await inspect(positionals, values);
    if (command === 'eval') return await evaluate(positionals, values);
    if (command === 'stack') return await stack(values);
    if (command === 'admin') return await admin(positionals, values);
    throw new CliError(`unknown command '${command}'; use prune, apply, inspect, eval, stack or admin`);
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`evop: ${userMessage(err)}\n`);
      return 2;
    }
    process.stderr.write(`evop: failed: ${(err as Error).message}\n`);
    if (process.env.EVOP_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}
