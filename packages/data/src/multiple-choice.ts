import { readFileSync } from 'node:fs';
import { UserError } from '@evop/config';
import { type ParseError, parse, printParseErrorCode } from 'jsonc-parser';

/** One scored choice: the log-likelihood of `continuation` given `context`, as lm-eval-harness scores it. */
export interface ChoiceRequest {
  context: string;
  continuation: string;
}

export interface MultipleChoiceItem {
  /** 1-based line of the item in its file. */
  line: number;
  choices: ChoiceRequest[];
  gold: number;
}

/** A task file evop cannot parse, naming the file and line. */
export class TaskFileError extends UserError {
  override readonly name = 'TaskFileError';
}

export const TASKS = {
  'arc-easy': 'commonsense-mc-llm-adapters/ARC-Easy.test.json',
  'arc-challenge': 'commonsense-mc-llm-adapters/ARC-Challenge.test.json',
  boolq: 'commonsense-mc-llm-adapters/boolq.test.json',
  piqa: 'commonsense-mc-llm-adapters/piqa.test.json',
  openbookqa: 'commonsense-mc-llm-adapters/openbookqa.test.json',
  'social-iqa': 'commonsense-mc-llm-adapters/social_i_qa.test.json',
  winogrande: 'commonsense-mc-llm-adapters/winogrande.test.json',
  hellaswag: 'hellaswag-val/hellaswag_val_full.txt',
} as const;
export type TaskName = keyof typeof TASKS;

const PROMPT = /(?:question|sentence): ([\s\S]*?)(?:\n\n|\s+(?=Option1:))/;
const CHOICE =
  /(?:Answer|Solution|Option)(\d+): ([\s\S]*?)(?=\s*(?:Answer|Solution|Option)\d+: |\s*Answer format:)/g;
const ANSWER = /^(?:answer|solution|option)(\d+)$/;

/**
 * Items of a task file: the LLM-Adapters JSON format (choices inline in `instruction`, parsed out) or HellaSwag's
 * six-line text format (`label: context`, gold index, four endings). Contexts and continuations follow
 * lm-eval-harness: "Question: …\nAnswer:" + " choice"; WinoGrande scores the sentence's rest after each option
 * substituted for `_`; BoolQ scores " no" / " yes".
 */
export function readTask(
  task: TaskName,
  file: string,
  options: { limit?: number } = {},
): MultipleChoiceItem[] {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TaskFileError(`cannot read task file '${file}': ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const items =
    task === 'hellaswag'
      ? hellaswag(file, content, options.limit)
      : adapters(task, file, content, options.limit);
  if (items.length === 0) throw new TaskFileError(`${file}: no items`);
  return items;
}

function hellaswag(file: string, content: string, limit = Number.POSITIVE_INFINITY): MultipleChoiceItem[] {
  const lines = content.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const items: MultipleChoiceItem[] = [];
  for (let i = 0; i < lines.length && items.length < limit; i += 6) {
    const [context, goldLine, ...endings] = lines.slice(i, i + 6);
    if (endings.length !== 4)
      throw new TaskFileError(`${file}:${i + 1}: item has ${endings.length + 2} of 6 lines`);
    const gold = Number(goldLine);
    if (!/^[0-3]$/.test(goldLine!.trim()))
      throw new TaskFileError(`${file}:${i + 2}: gold label ${JSON.stringify(goldLine)} is not 0–3`);
    items.push({
      line: i + 1,
      gold,
      choices: endings.map((e) => ({ context: context!.trim(), continuation: ` ${e.trim()}` })),
    });
  }
  return items;
}

function adapters(
  task: TaskName,
  file: string,
  content: string,
  limit = Number.POSITIVE_INFINITY,
): MultipleChoiceItem[] {
  // jsonc-parser, unlike JSON.parse, says where a syntax error is.
  const errors: ParseError[] = [];
  const records: unknown = parse(content, errors, { disallowComments: true, allowTrailingComma: false });
  if (errors.length > 0) {
    const { error, offset } = errors[0]!;
    const line = content.slice(0, offset).split('\n').length;
    throw new TaskFileError(`${file}:${line}: not valid JSON (${printParseErrorCode(error)})`);
  }
  if (!Array.isArray(records)) throw new TaskFileError(`${file}:1: expected a JSON array of items`);
  // Line of each item: where its "instruction" key stands.
  const lines: number[] = [];
  for (
    let at = content.indexOf('"instruction"'), line = 1, from = 0;
    at >= 0;
    at = content.indexOf('"instruction"', at + 1)
  ) {
    for (; from < at; from++) if (content.charCodeAt(from) === 10) line++;
    lines.push(line);
  }
  return records.slice(0, limit).map((record, i) => {
    const line = lines[i] ?? 1;
    const fail = (why: string) => new TaskFileError(`${file}:${line}: item ${i}: ${why}`);
    const { instruction, answer } = (record ?? {}) as { instruction?: unknown; answer?: unknown };
    if (typeof instruction !== 'string' || typeof answer !== 'string')
      throw fail('needs string "instruction" and "answer"');
    const prompt = PROMPT.exec(instruction)?.[1]?.trim();
    if (!prompt) throw fail('no "question:" or "sentence:" in the instruction');

    if (task === 'boolq') {
      if (answer !== 'true' && answer !== 'false')
        throw fail(`answer ${JSON.stringify(answer)} is not true/false`);
      const context = `Question: ${prompt.replace(/\?*$/, '?')}\nAnswer:`;
      return {
        line,
        gold: answer === 'true' ? 1 : 0,
        choices: [' no', ' yes'].map((c) => ({ context, continuation: c })),
      };
    }
    const options = [...instruction.matchAll(CHOICE)].map((m) => m[2]!.trim());
    if (options.length < 2) throw fail(`found ${options.length} choices; expected "Answer1: … Answer2: …"`);
    const gold = Number(ANSWER.exec(answer)?.[1]) - 1;
    if (!(gold >= 0 && gold < options.length)) throw fail(`answer ${JSON.stringify(answer)} names no choice`);
    if (task === 'winogrande') {
      const blank = prompt.indexOf('_');
      if (blank < 0) throw fail('the sentence has no blank "_"');
      const continuation = ` ${prompt.slice(blank + 1).trim()}`;
      return {
        line,
        gold,
        choices: options.map((o) => ({ context: prompt.slice(0, blank) + o, continuation })),
      };
    }
    const context = `Question: ${prompt}\nAnswer:`;
    return { line, gold, choices: options.map((o) => ({ context, continuation: ` ${o}` })) };
  });
}
