// Waiting for what another process or a timer does: `until` polls f until it gives a value (anything
// but undefined, null or false) and fails naming what it waited for once timeoutMs have passed. The
// timeout bounds a wait; it is not a timed assertion.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Maybe<T> = T | undefined | null | false;

export async function until<T>(what: string, f: () => Maybe<T> | Promise<Maybe<T>>, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
