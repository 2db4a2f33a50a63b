// The kinds of dataset problem and how serious each is. An error means the example (or file) cannot be
// trained on as written and `tunekit validate` exits 1; a warning is something Vertex tolerates or the
// seed article warns about, reported but not failing. One table, read by the validator, its report and
// the tests.

export type ProblemKind =
  // Errors: the line is skipped (Vertex drops it) or the file is refused.
  | 'invalid_utf8' | 'invalid_json' | 'not_object' | 'missing_contents' | 'mixed_layout' | 'wrong_type'
  | 'unknown_role' | 'empty_content' | 'non_string_content' | 'no_model_turn' | 'last_turn_not_model'
  | 'roles_not_alternating' | 'misplaced_system' | 'multimodal' | 'unsupported_part' | 'bad_weight'
  | 'too_many_turns' | 'render_failed' | 'too_long_dropped' | 'nothing_to_train' | 'no_examples'
  // Warnings.
  | 'bom' | 'crlf' | 'blank_line' | 'unknown_field' | 'too_long_truncated' | 'system_prompts_differ'
  | 'too_few_examples' | 'duplicate' | 'train_validation_overlap' | 'validation_too_large' | 'file_too_large';

export type Severity = 'error' | 'warning';

export interface KindInfo {
  severity: Severity;
  /** A few words for report headings. */
  title: string;
  /** Said once per kind in the human report, when there is something worth adding. */
  note?: string;
}

export const PROBLEM_KINDS: Record<ProblemKind, KindInfo> = {
  invalid_utf8: { severity: 'error', title: 'invalid UTF-8' },
  invalid_json: { severity: 'error', title: 'invalid JSON' },
  not_object: { severity: 'error', title: 'line is not a JSON object' },
  missing_contents: { severity: 'error', title: 'no "contents" or "messages"' },
  mixed_layout: { severity: 'error', title: 'layouts mixed in one file' },
  wrong_type: { severity: 'error', title: 'wrong JSON type' },
  unknown_role: { severity: 'error', title: 'unknown role' },
  empty_content: { severity: 'error', title: 'empty content' },
  non_string_content: { severity: 'error', title: 'content is not a string' },
  no_model_turn: { severity: 'error', title: 'no model turn' },
  last_turn_not_model: { severity: 'error', title: 'last turn is not a model turn' },
  roles_not_alternating: { severity: 'error', title: 'roles do not alternate', note: 'turns must go user, model, user, model, ... starting with user (chat templates such as Gemma\'s refuse anything else)' },
  misplaced_system: { severity: 'error', title: 'system message not first' },
  multimodal: { severity: 'error', title: 'non-text parts' },
  unsupported_part: { severity: 'error', title: 'unsupported parts (code execution, misplaced function parts)' },
  bad_weight: { severity: 'error', title: 'bad message weight' },
  too_many_turns: { severity: 'error', title: 'too many turns', note: 'at most 32,768 turns per example: more can never fit in the 131,072-token limit' },
  render_failed: { severity: 'error', title: 'chat template cannot render it' },
  too_long_dropped: { severity: 'error', title: 'over the token limit: dropped', note: 'nothing the model would train on fits in the limit; Vertex lists such rows in droppedExampleReasons' },
  nothing_to_train: { severity: 'error', title: 'no token to train on', note: 'every model turn has weight 0; the example would be dropped' },
  no_examples: { severity: 'error', title: 'no usable examples' },
  bom: { severity: 'warning', title: 'byte-order mark', note: 'tolerated: tunekit (and Vertex) skip a UTF-8 BOM at the start of the file' },
  crlf: { severity: 'warning', title: 'CRLF line ends', note: 'tolerated: the "\\r" is dropped; the text inside strings is unchanged' },
  blank_line: { severity: 'warning', title: 'blank lines', note: 'tolerated: blank lines are skipped, line numbers still count them' },
  unknown_field: { severity: 'warning', title: 'unknown fields', note: 'ignored by tunekit; check for a misspelt field name' },
  too_long_truncated: { severity: 'warning', title: 'over the token limit: truncated', note: 'the tokens past the limit are cut off; Vertex lists such rows in truncatedExampleIndices' },
  system_prompts_differ: { severity: 'warning', title: 'different system prompts', note: 'use the same system prompt in every example and when you call the tuned model' },
  too_few_examples: { severity: 'warning', title: 'too few examples' },
  duplicate: { severity: 'warning', title: 'exact duplicates', note: 'duplicates weigh an example more than the others and inflate validation scores' },
  train_validation_overlap: { severity: 'warning', title: 'in both training and validation', note: 'validation examples seen in training make the eval metrics look better than they are' },
  validation_too_large: { severity: 'warning', title: 'validation set over 5,000 examples', note: 'Vertex accepts at most 5,000 validation examples' },
  file_too_large: { severity: 'warning', title: 'file over 1 GB', note: 'Vertex accepts training files up to 1 GB' },
};

export const isError = (kind: ProblemKind | undefined): boolean => kind === undefined || PROBLEM_KINDS[kind].severity === 'error';
