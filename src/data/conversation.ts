// The one internal representation of a training example. Every dataset layout (Vertex `contents`,
// `messages` with role "model", OpenAI chat) parses to a Conversation; rendering, validation and
// statistics read only this. Roles are Vertex's: "user" and "model" ("assistant" is mapped at parse
// time and mapped back for the chat template at render time).

export type TurnRole = 'user' | 'model';

export interface Turn {
  role: TurnRole;
  /** The turn's text ('' for a model turn that only calls functions or a user turn that only answers them). */
  text: string;
  /** 0: a model turn that is context only (OpenAI's per-message weight). Absent or 1: trained. */
  weight?: 0 | 1;
  /** Model turns: the functions it calls (Vertex functionCall parts, OpenAI tool_calls), after its text. */
  calls?: FunctionCall[];
  /** User turns: results of earlier calls (Vertex functionResponse parts, OpenAI tool messages), before its text. */
  responses?: FunctionResponse[];
}

export interface FunctionCall {
  name: string;
  args: Record<string, unknown>;
}

export interface FunctionResponse {
  name: string;
  /** The tool message's content as the template gets it: OpenAI's text as written, Vertex's response as Python's json.dumps writes it. */
  content: string;
}

export interface Conversation {
  systemInstruction?: string;
  turns: Turn[];
  /** Declared functions, as transformers passes `tools` to the chat template. */
  tools?: unknown[];
  /** JSON path of the example's first function part or declaration (where a model without tool support refuses it). */
  toolsPath?: string;
  /** Where the example came from, for error messages: the file and its 1-based line. */
  source: { file: string; line: number };
}

/** The parts of a Conversation that rendering needs (prompts at inference have no source line). */
export type Dialogue = Pick<Conversation, 'systemInstruction' | 'turns' | 'tools'>;
