/**
 * Turning case-module results into the bench table and the results JSON: row normalization,
 * merging rows of the same name across modules, Petrel/peer ratios, formatting.
 */
import { isMissing, summarize, type BenchRow, type PeerFigure } from './types.js';

/** Merges rows of the same name across modules: Petrel figure from one, peer figures from another. */
export function mergeRows(lists: BenchRow[][]): Map<string, BenchRow> {
  const merged = new Map<string, BenchRow>();
  for (const rows of lists)
    for (const r of rows) {
      const m = merged.get(r.name);
      if (!m) merged.set(r.name, { ...r, peers: { ...(r.peers ?? {}) } });
      else {
        if (r.petrel !== undefined) m.petrel = r.petrel;
        if (r.petrelMissing && m.petrel === undefined) m.petrelMissing = r.petrelMissing;
        // A peer measured by two modules: keep a real figure over a "missing" one.
        for (const [k, f] of Object.entries(r.peers ?? {})) if (!(isMissing(f) && m.peers![k] !== undefined)) m.peers![k] = f;
        if (r.notes) m.notes = m.notes ? `${m.notes}; ${r.notes}` : r.notes;
        if (r.extra) m.extra = { ...(m.extra ?? {}), ...r.extra };
        if (r.higherIsBetter !== undefined) m.higherIsBetter = r.higherIsBetter;
      }
    }
  return merged;
}

/**
 * Accepts BenchRow, and benchmark.js-style results ({case, provider?, opsPerSec, samples:
 * seconds per op, rme?}) as bench/crypto.ts returns them: those become '<module>/<case> [provider]'
 * rows in ops/s.
 */
export function normalizeRow(mod: string) {
  return (raw: unknown): BenchRow => {
    const r = raw as Partial<BenchRow> & { case?: unknown; provider?: unknown; opsPerSec?: unknown; samples?: unknown; rme?: unknown };
    if (r && typeof r.name === 'string' && typeof r.unit === 'string') return r as BenchRow;
    if (r && typeof r.case === 'string' && typeof r.opsPerSec === 'number') {
      const secs = Array.isArray(r.samples) ? (r.samples as unknown[]).filter((x): x is number => typeof x === 'number' && x > 0) : [];
      return {
        name: `${mod}/${r.case}${typeof r.provider === 'string' ? ` [${r.provider}]` : ''}`,
        unit: 'ops/s',
        petrel: secs.length ? secs.map((x) => 1 / x) : r.opsPerSec,
        extra: { opsPerSec: r.opsPerSec, rme: r.rme },
      };
    }
    throw new Error(`module ${mod} returned a row without name/unit: ${JSON.stringify(raw).slice(0, 300)}`);
  };
}


/** Ratio Petrel / peer, oriented so that > 1 means Petrel is better. */
export function ratio(row: BenchRow, peer: PeerFigure | undefined): number | undefined {
  if (row.petrel === undefined || peer === undefined || isMissing(peer)) return undefined;
  const p = summarize(row.petrel).median;
  const q = summarize(peer).median;
  if (!(p > 0) || !(q > 0)) return undefined;
  return row.higherIsBetter === false ? q / p : p / q;
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toFixed(a >= 1e8 ? 0 : 2)}M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(a >= 1e6 ? 0 : 1)}k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toPrecision(3);
}

export function fig(f: number[] | number): string {
  const s = summarize(f);
  return s.samples.length > 1 ? `${fmt(s.median)} [${fmt(s.min)}-${fmt(s.max)}]` : fmt(s.median);
}

/** The table printed by `pnpm bench`: one line per (row, peer); missing peers as MISSING [n] with footnotes. */
export function formatTable(rows: BenchRow[]): string {
  const out: string[] = [];
  const lines: string[][] = [['case', 'unit', 'petrel', 'peer', 'peer figure', 'ratio']];
  const notes: string[] = [];
  for (const r of rows) {
    const petrel = r.petrel !== undefined ? fig(r.petrel) : `n/a (${r.petrelMissing ?? 'not implemented yet'})`;
    const peersList = Object.entries(r.peers ?? {});
    if (peersList.length === 0) lines.push([r.name, r.unit, petrel, '-', '-', '-']);
    peersList.forEach(([name, f], i) => {
      const rt = ratio(r, f);
      let pf: string;
      if (isMissing(f)) {
        notes.push(`${r.name} / ${name}: ${f.missing}`);
        pf = `MISSING [${notes.length}]`;
      } else pf = fig(f);
      lines.push([i === 0 ? r.name : '', i === 0 ? r.unit : '', i === 0 ? petrel : '', name, pf, rt === undefined ? '-' : `${rt.toFixed(2)}x`]);
    });
  }
  const w = lines[0]!.map((_, c) => Math.min(60, Math.max(...lines.map((l) => l[c]!.length))));
  out.push('');
  for (const [i, l] of lines.entries()) {
    out.push(l.map((x, c) => (c === 5 ? x.padStart(w[c]!) : x.padEnd(w[c]!))).join('  ').trimEnd());
    if (i === 0) out.push(w.map((n) => '-'.repeat(n)).join('  '));
  }
  if (rows.length === 0) out.push('(no rows)');
  notes.forEach((n, i) => out.push(`[${i + 1}] ${n.split('\n')[0]}`));
  out.push('ratio = Petrel / peer (inverted for lower-is-better units): > 1 means Petrel is better.\n');
  return out.join('\n');
}

export function jsonRow(r: BenchRow) {
  const peersOut: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(r.peers ?? {})) peersOut[k] = isMissing(f) ? f : { ...summarize(f), ratio: ratio(r, f) ?? null };
  return {
    name: r.name,
    unit: r.unit,
    higherIsBetter: r.higherIsBetter ?? true,
    petrel: r.petrel !== undefined ? summarize(r.petrel) : { missing: r.petrelMissing ?? 'not implemented yet' },
    peers: peersOut,
    notes: r.notes,
    extra: r.extra,
  };
}

