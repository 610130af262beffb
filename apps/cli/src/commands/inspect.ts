import { existsSync } from 'node:fs';
import { discoverLayers, llama2cToOnnx, readLlama2cCheckpoint, readModel, unitsOf } from '@evop/onnx';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { run } from '../command.ts';

/** `evop inspect <model>`: discovered layers, units with their parameters, KV-cache inputs. */
async function inspect(positionals: string[], options: { json?: boolean }): Promise<number> {
  const path = positionals[0];
  if (!path) throw new CliError('inspect: give a model file (ONNX or llama2.c .bin)');
  if (!existsSync(path)) throw new CliError(`inspect: no such file '${path}'`);
  const proto = path.endsWith('.bin') ? llama2cToOnnx(readLlama2cCheckpoint(path)) : readModel(path).proto;
  const layout = discoverLayers(proto);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(layout, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `${path}: ${layout.layers} decoder layers, hidden ${layout.hiddenSize}, vocabulary ${layout.vocabSize}, ${layout.totalParams.toLocaleString('en')} parameters`,
    `inputs: ${layout.inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ')}`,
    '',
    'unit      parameters  KV cache / module',
  ];
  for (const unit of unitsOf(layout, 'sublayer')) {
    const block = layout.blocks[unit.blocks[0]!]!;
    const cache = block.pastInputs.join(', ') || '-';
    lines.push(
      `${unit.id.padEnd(8)}  ${String(unit.params).padStart(10)}  ${cache}${unit.module ? `  ${unit.module}` : ''}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

export function inspectCommand(): Command {
  return new Command('inspect')
    .summary("list a model's decoder layers, prunable units, their modules and KV-cache inputs")
    .description(
      'Shows what evop found in a model: its decoder layers, the units it can remove (attention and MLP blocks) with ' +
        'their parameter counts and source module names, and the KV-cache inputs each one reads.',
    )
    .argument('<model>', 'an ONNX export or a llama2.c checkpoint (.bin)')
    .option('--json', 'print the discovered layout as JSON')
    .action(run(async (args, options) => inspect(args, options)));
}
