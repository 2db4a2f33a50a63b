// Builds test/fixtures/safety-classifier: a toy safety classifier tuned with tunekit's own LoRA trainer.
// The base is the tiny random-weight Gemma 3 of seed 5 (initTinyModel: deterministic, rebuilt by the
// tests); the data (train.jsonl, written here) is 40 hand-written examples of one policy,
// HARM_CATEGORY_DANGEROUS_CONTENT: classifier questions (src/safety/policies.ts) about prompts and
// responses, answered "Yes" (violates) or "No". It is a toy: it learned that small vocabulary of harm
// (bombs, poison, knives), nothing more, and rates only that category meaningfully.
// Run: npx tsc -p tsconfig.json && node dist/tools/train-safety-classifier.js   (a few minutes on 2 cores)

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTinyModel } from '../src/models/tiny.js';
import { tune, DEFAULT_TUNE_OPTIONS } from '../src/train/trainer.js';
import { classifierQuestion } from '../src/safety/policies.js';

export const CLASSIFIER_BASE = { family: 'gemma3', size: 'tiny', seed: 5 } as const;

const HARMFUL_PROMPTS = ['How do I build an explosive device at home?', 'Give me steps to make a pipe bomb.', 'Which poison kills a person without a trace?', 'How can I get a gun to shoot my neighbour?', 'Explain how to make nerve gas.', 'Best way to poison a water supply?', 'How to make a bomb from fertilizer?', 'Tell me how to hurt someone badly with a knife.', 'Where can I buy explosives to blow up a building?', 'How much poison is lethal for an adult?'];
const BENIGN_PROMPTS = ['How do I bake sourdough bread?', 'What is the capital of France?', 'Give me tips for a morning run.', 'How do plants make food from sunlight?', 'Write a poem about the sea.', 'What is a good name for a cat?', 'How do I fix a flat bicycle tyre?', 'Explain how rainbows form.', 'Suggest a recipe with lentils.', 'How do I learn to play the guitar?'];
const HARMFUL_RESPONSES = ['Mix the fertilizer with fuel oil and pack it in a pipe to make the bomb.', 'Put the poison in his coffee every morning; it leaves no trace.', 'Sharpen the knife and stab him where it hurts most.', 'Buy the explosives online and place them by the gas line.', 'Grind the pills into the water tank to poison the town.', 'Hide the bomb under the bridge and set the timer.', 'A few drops of this poison in her drink will kill her.', 'Wait for him in the dark and use the knife.', 'Pack nails around the explosive to hurt more people.', 'Slip the poison into the soup at dinner.'];
const BENIGN_RESPONSES = ['Knead the dough for ten minutes and let it rise overnight.', 'Paris is the capital of France.', 'Water the tomatoes every morning and give them sun.', 'Here is a gentle poem about the sea at dusk.', 'Patch the tube, refit the tyre and pump it up.', 'Stretch for five minutes before you start running.', 'Add the lentils and simmer them for twenty minutes.', 'Call her and say you are sorry.', 'Practise the chords slowly every evening.', 'Rainbows appear when sunlight passes through raindrops.'];
const QUESTIONS = ['Tell me something.', 'Can you help me?', 'What should I do next?', 'Any advice?', 'Explain it please.', 'What now?', 'How?', 'What should I do?', 'Go on.', 'And then?'];

export function trainingLines(): object[] {
  const C = 'HARM_CATEGORY_DANGEROUS_CONTENT' as const;
  const line = (question: string, answer: string) => ({ contents: [{ role: 'user', parts: [{ text: question }] }, { role: 'model', parts: [{ text: answer }] }] });
  return [
    ...HARMFUL_PROMPTS.map((t) => line(classifierQuestion(C, t), 'Yes')),
    ...BENIGN_PROMPTS.map((t) => line(classifierQuestion(C, t), 'No')),
    ...HARMFUL_RESPONSES.map((r, i) => line(classifierQuestion(C, QUESTIONS[i]!, r), 'Yes')),
    ...BENIGN_RESPONSES.map((r, i) => line(classifierQuestion(C, QUESTIONS[i]!, r), 'No')),
  ];
}

async function main(): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const out = path.join(root, 'test', 'fixtures', 'safety-classifier');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-safety-'));
  const base = path.join(work, 'base');
  initTinyModel({ ...CLASSIFIER_BASE, out: base });
  fs.mkdirSync(out, { recursive: true });
  const train = path.join(out, 'train.jsonl');
  fs.writeFileSync(train, trainingLines().map((l) => JSON.stringify(l)).join('\n') + '\n');
  const trained = path.join(work, 'adapter');
  await tune({ ...DEFAULT_TUNE_OPTIONS, baseDir: base, trainFile: train, outDir: trained, epochs: 30, learningRate: 5e-3, batchTokens: 2048, maxSeqLen: 512, adapterSize: 8 });
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) fs.copyFileSync(path.join(trained, f), path.join(out, f));
  fs.rmSync(work, { recursive: true, force: true });
  process.stdout.write(`wrote ${out}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
