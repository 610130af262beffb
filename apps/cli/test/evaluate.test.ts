import assert from 'node:assert/strict';
import { test } from 'node:test';
import { data, evop } from './helpers.ts';

test('evop eval prints perplexity per corpus and zero-shot accuracy, for a person or as JSON', async () => {
  const args = ['eval', data.model, '--tokenizer', data.tokenizer, '--data', data.stories, '--seq-len', '64'];
  const text = await evop([...args, '--windows', '4', '--tasks', 'piqa', '--task-limit', '5']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /tinystories_val\.txt: perplexity \d+\.\d{4} \(4 windows × 64 tokens\)/);
  assert.match(text.stdout, /piqa: acc \d+\.\d ± \d+\.\d, acc_norm .* \(5 items\)/);

  const json = await evop([...args, '--windows', '4', '--tasks', 'piqa', '--task-limit', '5', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const result = JSON.parse(json.stdout);
  assert.equal(result.perplexity[0].data, data.stories);
  assert.equal(result.perplexity[0].windows, 4);
  // The same windows give the same number in either form.
  assert.equal(result.perplexity[0].perplexity.toFixed(4), /perplexity (\S+)/.exec(text.stdout)![1]);
  assert.equal(result.tasks[0].task, 'piqa');
  assert.equal(result.tasks[0].n, 5);

  const bad = await evop([...args, '--windows', 'many']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, "evop: option '--windows <n>' argument 'many' is invalid. expected an integer.\n");
});
