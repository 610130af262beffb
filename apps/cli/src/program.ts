import { Command } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { adminCommand } from './commands/admin.ts';
import { applyCommand } from './commands/apply.ts';
import { evalCommand } from './commands/evaluate.ts';
import { inspectCommand } from './commands/inspect.ts';
import { latencyCommand } from './commands/latency.ts';
import { pruneCommand } from './commands/prune.ts';
import { remoteCommand } from './commands/remote.ts';
import { stackCommand } from './commands/stack.ts';

/** What each exit code of `evop` means; shown by `evop --help` and kept in README. */
export const EXIT_CODES = `Exit codes:
  0    done
  1    evop failed (a bug, or a machine or service fault; EVOP_DEBUG=1 prints the stack)
  2    bad input: the message names the flag, file or field
  3    evop prune finished and wrote its model, mask and report, but a later stage failed
       (named on stderr; evop prune --resume completes it)
  130  stopped (Ctrl-C); evop prune --resume continues. evop remote watch: the job was cancelled
       (and 1: the job failed)`;

/**
 * The `evop` command line: each command defined once, in its own file, with its flags' meanings, types and
 * defaults, from which `evop <command> --help` and `evop help <command>` are made.
 */
export function evopProgram(): Command {
  const program = new Command('evop')
    .description(
      'Makes a language model smaller and faster by removing whole decoder layers, or their attention / MLP ' +
        'blocks, chosen by evolutionary search (EvoP). Models are ONNX exports; the pruned model loads anywhere ' +
        'onnxruntime runs.',
    )
    .version(packageJson.version, '-V, --version', 'print the version')
    .showSuggestionAfterError(true)
    .addHelpText('after', `\n${EXIT_CODES}\n\nMore: evop help <command>, and README.md.`)
    .addCommand(pruneCommand())
    .addCommand(applyCommand())
    .addCommand(inspectCommand())
    .addCommand(evalCommand())
    .addCommand(latencyCommand())
    .addCommand(stackCommand())
    .addCommand(remoteCommand())
    .addCommand(adminCommand());
  return program;
}
