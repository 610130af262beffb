import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SEARCH_SPEC_DEFAULTS } from '@evop/pipeline';
import type { Command } from 'commander';
import { evopProgram } from '../src/program.ts';
import { evop } from './helpers.ts';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** Every command a user can run, as the words that name it (`['remote', 'status']`). */
function commandPaths(command: Command, path: string[] = []): string[][] {
  return command.commands
    .filter((c) => c.name() !== 'help')
    .flatMap((c) => [[...path, c.name()], ...commandPaths(c, [...path, c.name()])]);
}

function find(path: string[]): Command {
  return path.reduce<Command>((c, name) => c.commands.find((s) => s.name() === name)!, evopProgram());
}

test('every command documents each of its flags and arguments, with defaults', () => {
  const paths = commandPaths(evopProgram());
  assert.ok(paths.length >= 7, paths.join(' '));
  for (const path of paths) {
    const command = find(path);
    const help = command.helpInformation();
    assert.match(help, new RegExp(`^Usage: evop ${path.join(' ')} `), path.join(' '));
    assert.ok(command.description() || command.summary(), `${path.join(' ')} has a description`);
    for (const option of command.options) {
      assert.ok(option.description.length > 5, `${path.join(' ')} ${option.flags} has a description`);
      assert.ok(help.includes(option.flags), `${path.join(' ')} --help lists ${option.flags}`);
    }
    for (const argument of command.registeredArguments)
      assert.ok(argument.description, `${path.join(' ')} <${argument.name()}> has a description`);
  }
  // prune's defaults are the spec's, so that help shows what a run gets.
  const prune = find(['prune']);
  const defaultOf = (flag: string) => prune.options.find((o) => o.long === flag)!.defaultValue;
  assert.equal(defaultOf('--budget'), SEARCH_SPEC_DEFAULTS.budget);
  assert.equal(defaultOf('--held-out'), SEARCH_SPEC_DEFAULTS.heldOut);
  assert.equal(defaultOf('--seq-len'), SEARCH_SPEC_DEFAULTS.seqLen);
  assert.match(prune.helpInformation(), /--budget <evaluations> +search budget .*\(default: 1000\)/s);
});

test('evop <command> --help, evop help <command>, --version, and a near-miss flag', async () => {
  const help = await evop(['prune', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: evop prune \[options\]/);
  assert.match(help.stdout, /--seq-len <tokens> +tokens per window \(default: 256\)/);
  assert.match(help.stdout, /--granularity <unit>.*\(choices: "layer", "sublayer",\s+default: "layer"\)/s);
  assert.match(help.stdout, /Examples:/);
  const viaHelp = await evop(['help', 'prune']);
  assert.equal(viaHelp.code, 0);
  assert.equal(viaHelp.stdout, help.stdout);

  const top = await evop(['--help']);
  assert.equal(top.code, 0);
  for (const path of commandPaths(evopProgram()).filter((p) => p.length === 1))
    assert.match(top.stdout, new RegExp(`\\n  ${path[0]} `), `evop --help lists ${path[0]}`);
  assert.match(top.stdout, /Exit codes:\n +0 +done/);

  const v = await evop(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), version);

  const typo = await evop(['inspect', 'model.onnx', '--jsn']);
  assert.equal(typo.code, 2);
  assert.equal(typo.stderr, "evop: unknown option '--jsn' (did you mean --json?)\n");
  const command = await evop(['prun']);
  assert.equal(command.code, 2);
  assert.equal(command.stderr, "evop: unknown command 'prun' (did you mean prune?)\n");
  const none = await evop([]);
  assert.equal(none.code, 2, 'no command is bad input');
  assert.match(none.stderr, /Usage: evop/);
});
