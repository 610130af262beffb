import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { readTask, TASKS, TaskFileError } from '../src/index.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'evop-tasks-'));

test('every task file in the shared data parses into items with a gold choice', () => {
  const counts: Record<string, number> = {};
  for (const [task, file] of Object.entries(TASKS)) {
    const items = readTask(task as keyof typeof TASKS, resolveDataFile(file));
    for (const item of items)
      assert.ok(item.gold >= 0 && item.gold < item.choices.length && item.choices.length >= 2);
    counts[task] = items.length;
  }
  assert.deepEqual(counts, {
    'arc-easy': 2376,
    'arc-challenge': 1172,
    boolq: 3270,
    piqa: 1838,
    openbookqa: 500,
    'social-iqa': 1954,
    winogrande: 1267,
    hellaswag: 10042,
  });
  assert.equal(readTask('hellaswag', resolveDataFile(TASKS.hellaswag), { limit: 5 }).length, 5);
});

test('a hand-checked WinoGrande item scores the shared continuation under each option', () => {
  const [item] = readTask('winogrande', resolveDataFile(TASKS.winogrande), { limit: 1 });
  assert.deepEqual(item, {
    line: 3,
    gold: 1,
    choices: [
      {
        context: 'Sarah was a much better surgeon than Maria so Sarah',
        continuation: ' always got the easier cases.',
      },
      {
        context: 'Sarah was a much better surgeon than Maria so Maria',
        continuation: ' always got the easier cases.',
      },
    ],
  });
  const [arc] = readTask('arc-easy', resolveDataFile(TASKS['arc-easy']), { limit: 1 });
  assert.equal(arc!.choices.length, 4);
  assert.equal(arc!.choices[0]!.continuation, ' Sunlight is the source of energy for nearly all ecosystems.');
  assert.equal(arc!.gold, 0);
});

test('a malformed task file is refused naming its line', () => {
  const dir = tempDir();
  const json = join(dir, 'arc.json');
  writeFileSync(
    json,
    JSON.stringify(
      [
        {
          instruction:
            'Please choose the correct answer to the question: Q?\n\nAnswer1: a Answer2: b\n\nAnswer format: answer1/answer2',
          answer: 'answer1',
        },
        {
          instruction:
            'Please choose the correct answer to the question: Q?\n\nAnswer1: a\n\nAnswer format: answer1',
          answer: 'answer1',
        },
      ],
      null,
      2,
    ),
  );
  assert.throws(
    () => readTask('arc-easy', json),
    (err: unknown) =>
      err instanceof TaskFileError && /arc\.json:7: item 1: found 1 choices/.test(err.message),
  );
  writeFileSync(json, '[\n  {"instruction": "x",\n  "answer": }\n]');
  assert.throws(() => readTask('arc-easy', json), /arc\.json:3: not valid JSON/);
  const hs = join(dir, 'hellaswag.txt');
  writeFileSync(hs, 'ctx: a man\n2\nx\ny\nz\nw\nctx: b\n7\nx\ny\nz\nw\n');
  assert.throws(() => readTask('hellaswag', hs), /hellaswag\.txt:8: gold label "7" is not 0–3/);
});
