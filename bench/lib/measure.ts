/**
 * Timing helpers for case modules. Benchmarks only: nothing here belongs in unit tests.
 *
 *   const s = await repeat(5, async () => { const t = now(); await work(); return bytes / (now() - t) / 1e3; });
 *   const rate = opsPerSec(() => aead.seal(n, aad, pt), { minMs: 300 });   // one sample
 */

/** Milliseconds, high resolution. */
export const now = (): number => performance.now();

/** Runs `fn` n times (after `warmup` unrecorded runs) and returns what each run returned. */
export async function repeat(n: number, fn: () => number | Promise<number>, warmup = 0): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

/** Calls a synchronous `fn` in batches for at least `minMs`, returns calls per second. */
export function opsPerSec(fn: () => unknown, opts: { minMs?: number; batch?: number } = {}): number {
  const minMs = opts.minMs ?? 300;
  let batch = opts.batch ?? 1;
  // Warm up and size the batch to ~5 ms.
  for (;;) {
    const t = now();
    for (let i = 0; i < batch; i++) fn();
    const dt = now() - t;
    if (dt >= 5 || batch >= 1 << 24) break;
    batch *= 2;
  }
  let calls = 0;
  const t0 = now();
  let dt = 0;
  while (dt < minMs) {
    for (let i = 0; i < batch; i++) fn();
    calls += batch;
    dt = now() - t0;
  }
  return (calls * 1000) / dt;
}

/** Several opsPerSec samples (for median/min/max). */
export function opsPerSecSamples(fn: () => unknown, samples: number, opts: { minMs?: number } = {}): number[] {
  return Array.from({ length: samples }, () => opsPerSec(fn, opts));
}
