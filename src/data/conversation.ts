// The one internal representation of a training example. Every dataset layout (Vertex `contents`,
// `messages` with role "model", OpenAI chat) parses to a Conversation; rendering, validation and
// statistics read only this. Roles are Vertex's: "user" and "model" ("assistant" is mapped at parse
// time and mapped back for the chat template at render time).

export type TurnRole = 'user' | 'model';

export interface Turn {
  role: TurnRole;
  text: string;
  /** 0: a model turn that is context only (OpenAI's per-message weight). Absent or 1: trained. */
  weight?: 0 | 1;
}

export interface Conversation {
  systemInstruction?: string;
  turns: Turn[];
  /** Where the example came from, for error messages: the file and its 1-based line. */
  source: { file: string; line: number };
}

/** The parts of a Conversation that rendering needs (prompts at inference have no source line). */
export type Dialogue = Pick<Conversation, 'systemInstruction' | 'turns'>;
