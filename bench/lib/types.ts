/**
 * The bench contract between bench/run.ts and the case modules (bench/crypto.ts, bench/tls.ts,
 * bench/lib/peers.ts, later bench/quic.ts, bench/h3.ts ...).
 *
 * A case module exports `async function runXxxBench(opts: BenchOptions): Promise<BenchRow[] | void>`
 * and is registered with one line in bench/run.ts. Rows with the same `name` from different
 * modules are merged, so a module that measures Petrel can name its row like a peer row (see
 * PEER_ROWS in bench/lib/peers.ts) and get the peer columns of the same run beside it.
 */

export interface BenchOptions {
  /** Reduced sizes / durations (the whole `pnpm bench --quick` stays under ~3 minutes). */
  quick: boolean;
  /** Case-name filters (substring match); empty = everything. */
  filter: string[];
}

/** A peer figure: raw samples, one number, or why the peer could not be measured. */
export type PeerFigure = number[] | number | { missing: string };

export interface BenchRow {
  /** Case name, e.g. 'quic/bulk-10MB', 'tls/tcp-handshakes', 'crypto/aes-128-gcm-seal-1200B'. */
  name: string;
  /** Unit of every figure in the row, e.g. 'ops/s', 'MB/s', 'Gbit/s', 'conn/s', 'ms'. */
  unit: string;
  /** Default true; false for times/latencies (the ratio is inverted so that > 1 = Petrel better). */
  higherIsBetter?: boolean;
  /** Petrel's figure: samples (one per repetition) or one number; absent = not implemented yet. */
  petrel?: number[] | number;
  /** Why there is no Petrel figure (default "not implemented yet"). */
  petrelMissing?: string;
  /** Peer figures from the same run, by peer name. */
  peers?: Record<string, PeerFigure>;
  /** Free text (sizes, parameters, caveats). */
  notes?: string;
  /** Extra raw data stored in the JSON results (RSS, CPU seconds, failures...). */
  extra?: Record<string, unknown>;
}

export interface Summary {
  samples: number[];
  median: number;
  min: number;
  max: number;
}

export function summarize(x: number[] | number): Summary {
  const samples = Array.isArray(x) ? x.slice() : [x];
  const s = samples.slice().sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) >> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { samples, median, min: n ? s[0]! : NaN, max: n ? s[n - 1]! : NaN };
}

export function isMissing(f: PeerFigure | undefined): f is { missing: string } {
  return typeof f === 'object' && f !== null && !Array.isArray(f);
}

/** Filter match: no filter, or the case name contains one of them. */
export function selected(name: string, filter: string[]): boolean {
  return filter.length === 0 || filter.some((f) => name.includes(f));
}
