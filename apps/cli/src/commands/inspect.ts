import { existsSync } from 'node:fs';
import { discoverLayers, llama2cToOnnx, readLlama2cCheckpoint, readModel, unitsOf } from '@evop/onnx';
import { CliError } from '../cli-error.ts';

/** `evop inspect <model>`: discovered layers, units with their parameters, KV-cache inputs. */
export async function inspect(positionals: string[], options: { json?: boolean }): Promise<number> {
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
