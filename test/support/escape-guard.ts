/**
 * For tests of the "never crash" rule at application edges: any unhandled rejection or uncaught
 * exception while a test runs fails that test (and so the file), and process warnings are kept for
 * assertions. Import once per test file, then declare tests with `t(...)` instead of uvu's `test`.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const escaped: unknown[] = [];
process.on('unhandledRejection', (e) => escaped.push(e));
process.on('uncaughtException', (e) => escaped.push(e));

/** Process warnings emitted so far (tests may clear it with `warnings.length = 0`). */
export const warnings: Error[] = [];
process.on('warning', (w) => warnings.push(w));

export const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Fails if anything escaped to the process (after letting pending callbacks run for 30 ms). */
export async function noEscapes(): Promise<void> {
  await tick(30);
  const e = escaped.splice(0);
  if (e.length) assert.unreachable(`escaped to the process: ${e.map((x) => (x instanceof Error ? x.stack : String(x))).join('\n')}`);
}

/** A test that also fails when anything escaped to the process while it ran. */
export function t(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    try {
      await fn();
    } finally {
      await noEscapes();
    }
  });
}

/** `p`, or a rejection naming `what` after `ms`. */
export function within<T>(ms: number, p: Promise<T>, what = 'result'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`no ${what} after ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
