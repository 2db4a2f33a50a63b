// Real byte-level BPE tokenizers for the project's tiny random-weight checkpoints, one per family, laid
// out like the family's published tokenizer (Llama-3.2-1B-Instruct, Qwen3-0.6B, gemma-3-270m-it):
// the same special tokens with the same flags and relative ids, the same pre-tokenizer regex,
// post-processor and decoder, and a chat template that renders the family's exact prompt format.
// Rules it keeps:
// - Deterministic: the same family and merge count give byte-identical JSON (no dates, no randomness).
// - Split regexes are llama.cpp's spellings for the GGUF pre-tokenizer name each family maps to
//   (llama -> "llama-bpe", qwen3 -> "qwen2", gemma3 -> "llama-bpe"), and ignore_merges follows what
//   llama.cpp does for that name (true for llama-bpe), so a GGUF export tokenizes identically.
// - Known departures from the real files, all for llama.cpp parity or determinism: Qwen3's NFC
//   normalizer is left out (llama.cpp does not normalize); Gemma 3's real tokenizer is
//   SentencePiece-style BPE (▁ for spaces, byte fallback) while this one is byte-level with the Llama 3
//   regex; the Llama template omits 3.1+'s "Cutting Knowledge Date / Today Date" system preamble (it
//   calls strftime_now); tools are not rendered by any template.

import type { Family } from '../models/config.js';
import { SPLIT_REGEX, trainByteLevelBpe, type PreTokenizerName } from './bpe-trainer.js';
import { TRAINING_CORPUS } from './corpus.js';

export type { Family };

export interface GeneratedTokenizer {
  /** File name -> JSON object: tokenizer.json, tokenizer_config.json, special_tokens_map.json. */
  files: Record<string, unknown>;
  /** Total ids including special tokens. */
  size: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

interface AddedSpec {
  content: string;
  special: boolean;
}

interface FamilySpec {
  pre: PreTokenizerName;
  ignoreMerges: boolean;
  /** Merges as "a b" strings (older tokenizers releases) or [a, b] pairs (newer). */
  mergeFormat: 'string' | 'pair';
  /** Added tokens taking ids 0.. before the byte vocabulary (Gemma's <pad> <eos> <bos> <unk>). */
  leading: AddedSpec[];
  /** Added tokens after the BPE vocabulary, in the family's order. */
  trailing: AddedSpec[];
  /** Whether model.vocab also lists the added tokens (Gemma's does, Llama's and Qwen's do not). */
  addedInVocab: boolean;
  bos: string | null;
  eos: string;
  pad: string | null;
  /** eos ids for generation_config.json, by content, in the published order. */
  eosAll: string[];
  template: string;
}

const special = (content: string): AddedSpec => ({ content, special: true });
const plain = (content: string): AddedSpec => ({ content, special: false });

// Llama 3: BOS on every text (post-processor), system turn only when given, content trimmed.
const LLAMA3_TEMPLATE = String.raw`{{- bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}`;

// Qwen3 ChatML: no BOS; assistant turns after the last real user query carry a <think> block
// (empty when there is no reasoning); enable_thinking=false pre-fills an empty think block.
const QWEN3_TEMPLATE = String.raw`{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_query_index=messages|length - 1, found=false) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if not ns.found and message.role == 'user' and message.content is string and not (message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.found = true %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == 'user' or (message.role == 'system' and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {%- set reasoning = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning) %}
            {{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}`;

// Gemma 3: BOS, no system role (the system text opens the first user turn), assistant is "model",
// user/model must alternate.
const GEMMA3_TEMPLATE = String.raw`{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set first_user_prefix = '' %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}
    {{- '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<start_of_turn>model\n' }}
{%- endif %}`;

const QWEN_SPECIALS = [
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>',
  '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>',
  '<|image_pad|>', '<|video_pad|>',
];
const QWEN_PLAIN = [
  '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>',
  '<|file_sep|>', '<tool_response>', '</tool_response>', '<think>', '</think>',
];

const FAMILIES: Record<Family, FamilySpec> = {
  llama: {
    pre: 'llama-bpe',
    ignoreMerges: true,
    mergeFormat: 'string',
    leading: [],
    trailing: [
      '<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>',
      '<|finetune_right_pad_id|>', '<|reserved_special_token_2|>', '<|start_header_id|>', '<|end_header_id|>',
      '<|eom_id|>', '<|eot_id|>', '<|python_tag|>',
    ].map(special),
    addedInVocab: false,
    bos: '<|begin_of_text|>',
    eos: '<|eot_id|>',
    pad: null,
    eosAll: ['<|end_of_text|>', '<|eot_id|>'],
    template: LLAMA3_TEMPLATE,
  },
  qwen3: {
    pre: 'qwen2',
    ignoreMerges: false,
    mergeFormat: 'pair',
    leading: [],
    trailing: [...QWEN_SPECIALS.map(special), ...QWEN_PLAIN.map(plain)],
    addedInVocab: false,
    bos: null,
    eos: '<|im_end|>',
    pad: '<|endoftext|>',
    eosAll: ['<|im_end|>', '<|endoftext|>'],
    template: QWEN3_TEMPLATE,
  },
  gemma3: {
    pre: 'llama-bpe',
    ignoreMerges: true,
    mergeFormat: 'pair',
    leading: ['<pad>', '<eos>', '<bos>', '<unk>'].map(special),
    trailing: ['<start_of_turn>', '<end_of_turn>'].map(special),
    addedInVocab: true,
    bos: '<bos>',
    eos: '<eos>',
    pad: '<pad>',
    eosAll: ['<eos>', '<end_of_turn>'],
    template: GEMMA3_TEMPLATE,
  },
};

const addedToken = (id: number, t: AddedSpec) => ({
  id, content: t.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t.special,
});
const decoderEntry = (t: AddedSpec) => ({
  content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: t.special,
});
const mapEntry = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean, useRegex: boolean) => ({
  type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: useRegex,
});

function bosTemplate(bos: string, bosId: number) {
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

/** Trains the family's tiny BPE (`merges` merges on the built-in corpus) and lays out its files. */
export function generateTokenizer(family: Family, opts: { merges: number }): GeneratedTokenizer {
  const spec = FAMILIES[family];
  if (!spec) throw new RangeError(`no tiny tokenizer for family ${JSON.stringify(family)}`);
  const bpe = trainByteLevelBpe(TRAINING_CORPUS, { merges: opts.merges, splitRegex: SPLIT_REGEX[spec.pre] });
  if (bpe.merges.length < opts.merges) {
    throw new RangeError(`the built-in corpus yields at most ${bpe.merges.length} merges for ${family}; asked for ${opts.merges}`);
  }

  // Ids: leading added tokens, then the byte-level vocabulary, then trailing added tokens.
  const added: { id: number; t: AddedSpec }[] = spec.leading.map((t, i) => ({ id: i, t }));
  const base = spec.leading.length;
  const vocab: Record<string, number> = {};
  if (spec.addedInVocab) for (const a of added) vocab[a.t.content] = a.id;
  bpe.tokens.forEach((tok, i) => (vocab[tok] = base + i));
  const firstTrailing = base + bpe.tokens.length;
  spec.trailing.forEach((t, i) => added.push({ id: firstTrailing + i, t }));
  if (spec.addedInVocab) for (const a of added.slice(spec.leading.length)) vocab[a.t.content] = a.id;
  const size = firstTrailing + spec.trailing.length;
  const idOf = (content: string): number => added.find((a) => a.t.content === content)!.id;

  const bosId = spec.bos === null ? null : idOf(spec.bos);
  const split = { type: 'Split', pattern: { Regex: SPLIT_REGEX[spec.pre] }, behavior: 'Isolated', invert: false };
  const model = {
    type: 'BPE',
    dropout: null,
    unk_token: family === 'gemma3' ? '<unk>' : null,
    continuing_subword_prefix: family === 'qwen3' ? '' : null,
    end_of_word_suffix: family === 'qwen3' ? '' : null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: spec.ignoreMerges,
    vocab,
    merges: spec.mergeFormat === 'string' ? bpe.merges.map(([a, b]) => `${a} ${b}`) : bpe.merges,
  };

  let tokenizerJson: Record<string, unknown>;
  let config: Record<string, unknown>;
  let specialMap: Record<string, unknown>;
  const addedTokens = added.map((a) => addedToken(a.id, a.t));
  const addedDecoder = Object.fromEntries(added.map((a) => [String(a.id), decoderEntry(a.t)]));
  if (family === 'llama') {
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [split, byteLevel(false, true, false)] },
      post_processor: { type: 'Sequence', processors: [byteLevel(true, false, true), bosTemplate(spec.bos!, bosId!)] },
      decoder: byteLevel(true, true, true),
      model,
    };
    config = {
      added_tokens_decoder: addedDecoder,
      bos_token: spec.bos,
      chat_template: spec.template,
      clean_up_tokenization_spaces: true,
      eos_token: spec.eos,
      model_input_names: ['input_ids', 'attention_mask'],
      model_max_length: 131072,
      tokenizer_class: 'PreTrainedTokenizerFast',
    };
    specialMap = { bos_token: mapEntry(spec.bos!), eos_token: mapEntry(spec.eos) };
  } else if (family === 'qwen3') {
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [split, byteLevel(false, false, false)] },
      post_processor: byteLevel(false, false, false),
      decoder: byteLevel(false, false, false),
      model,
    };
    const extra = QWEN_SPECIALS.slice(1);
    config = {
      add_bos_token: false,
      add_prefix_space: false,
      added_tokens_decoder: addedDecoder,
      additional_special_tokens: extra,
      bos_token: null,
      chat_template: spec.template,
      clean_up_tokenization_spaces: false,
      eos_token: spec.eos,
      errors: 'replace',
      model_max_length: 131072,
      pad_token: spec.pad,
      split_special_tokens: false,
      tokenizer_class: 'Qwen2Tokenizer',
      unk_token: null,
    };
    specialMap = { additional_special_tokens: extra, eos_token: mapEntry(spec.eos), pad_token: mapEntry(spec.pad!) };
  } else {
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [split, byteLevel(false, false, false)] },
      post_processor: bosTemplate(spec.bos!, bosId!),
      decoder: byteLevel(false, false, false),
      model,
    };
    config = {
      add_bos_token: true,
      add_eos_token: false,
      added_tokens_decoder: addedDecoder,
      bos_token: spec.bos,
      chat_template: spec.template,
      clean_up_tokenization_spaces: false,
      eos_token: spec.eos,
      model_max_length: 32768,
      pad_token: spec.pad,
      spaces_between_special_tokens: false,
      // Not 'GemmaTokenizer': transformers 5 rebuilds that class as SentencePiece-style from the vocabulary,
      // ignoring this file's byte-level pipeline; the generic class runs tokenizer.json as written.
      tokenizer_class: 'PreTrainedTokenizerFast',
      unk_token: '<unk>',
      use_default_system_prompt: false,
    };
    specialMap = {
      bos_token: mapEntry(spec.bos!), eos_token: mapEntry(spec.eos), pad_token: mapEntry(spec.pad!), unk_token: mapEntry('<unk>'),
    };
  }

  return {
    files: { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': config, 'special_tokens_map.json': specialMap },
    size,
    bosTokenId: bosId,
    eosTokenIds: spec.eosAll.map(idOf),
    padTokenId: spec.pad === null ? null : idOf(spec.pad),
  };
}
