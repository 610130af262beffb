import { UserError } from '@evop/config';
import { type Command, CommanderError } from 'commander';
import { userMessage } from './cli-error.ts';
import { exitCodeOf } from './command.ts';
import { evopProgram } from './program.ts';

/** commander's error text as evop's one line: `evop: unknown option '--sed' (did you mean --seed?)`. */
function oneLine(text: string): string {
  const line = text
    .replace(/^error: /, '')
    .replace(/\s*\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  return `evop: ${line}\n`;
}

/** Settings every command needs; commander copies them only to commands made with `.command()`. */
function configure(command: Command): void {
  command
    .exitOverride()
    .showSuggestionAfterError(true)
    .helpOption('-h, --help', 'show this help')
    .configureOutput({ outputError: (text, write) => write(oneLine(text)) });
  for (const sub of command.commands) configure(sub);
}

/** Runs one `evop` command line; returns the exit code (see EXIT_CODES). */
export async function main(argv: string[]): Promise<number> {
  const program = evopProgram();
  configure(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCodeOf(program);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, `help <command>` and --version end here too, with 0; help shown because no command was given, 1.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`evop: ${userMessage(err)}\n`);
      return 2;
    }
    process.stderr.write(`evop: failed: ${(err as Error).message}\n`);
    if (process.env.EVOP_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}
