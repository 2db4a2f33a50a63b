// Stop sequences on generated text. While streaming, text that could still become the start of a stop
// sequence is held back, so a client never sees part of a stop string that is then cut.

export class StopSequenceMatcher {
  private buffer = '';
  constructor(private readonly stops: string[]) {}

  /**
   * Feeds new text; returns the text that is safe to emit now, and whether a stop sequence was hit
   * (in which case the returned text ends just before it and nothing after it is ever emitted).
   */
  push(text: string): { emit: string; stopped: boolean } {
    this.buffer += text;
    if (this.stops.length === 0) {
      const emit = this.buffer;
      this.buffer = '';
      return { emit, stopped: false };
    }
    let cut = -1;
    for (const s of this.stops) {
      const i = this.buffer.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const emit = this.buffer.slice(0, cut);
      this.buffer = '';
      return { emit, stopped: true };
    }
    // Hold back the longest suffix that is a proper prefix of some stop sequence.
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.buffer.length); n > hold; n--) {
        if (this.buffer.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
      }
    }
    const emit = this.buffer.slice(0, this.buffer.length - hold);
    this.buffer = this.buffer.slice(this.buffer.length - hold);
    return { emit, stopped: false };
  }

  /** Text still held back when generation ends for another reason. */
  flush(): string {
    const rest = this.buffer;
    this.buffer = '';
    return rest;
  }
}
