/**
 * QUIC on 127.0.0.1: Petrel versus ngtcp2 and quic-go in the same run. Every endpoint is its own
 * process under /usr/bin/time (peak RSS, CPU seconds per process); Petrel's sides are
 * bench/quic-proc.ts (node provider).
 *
 *   quic/bulk-<N>MB                     Gbit/s, Petrel client ← Petrel server (hq-interop), one
 *                                       connection, one file; peers (bench/lib/peers.ts, same run):
 *                                       ngtcp2 ← ngtcp2 (h3), quic-go ← quic-go (hq-interop)
 *   quic/bulk-<N>MB [quic-go client]    quic-go client ← Petrel server   vs quic-go ← quic-go (hq-interop)
 *   quic/bulk-<N>MB [quic-go server]    Petrel client ← quic-go server   vs quic-go ← quic-go
 *   quic/bulk-<N>MB [gtlsclient]        gtlsclient ← Petrel h3 server    vs gtlsclient ← gtlsserver (h3)
 *   quic/bulk-<N>MB [gtlsserver]        Petrel h3 client ← gtlsserver    vs gtlsclient ← gtlsserver
 *   quic/bulk-<N>MB rss-server|rss-client|cpu-server|cpu-client
 *                                       peak RSS (MB) / CPU seconds of each process of the self-to-self
 *                                       runs (lower is better)
 *   quic/handshakes                     conn/s, N sequential Petrel connections each fetching 1 kB
 *                                       (peers from bench/lib/peers.ts)
 *   quic/handshakes [quic-go client]    quic-go multiconnect ← Petrel server vs ← quic-go server
 *   quic/handshakes-concurrent          conn/s, N connections 50 at a time, each fetching 1 kB:
 *                                       Petrel (one client process) vs ngtcp2 and quic-go (one client
 *                                       process per connection, `xargs -P 50`: process start-up included)
 *
 * Times: peer clients (and quic-go/gtlsclient against Petrel) = client process wall time, start to
 * exit; Petrel clients = measured inside the process from connect() to the last byte (Node start-up
 * and TypeScript loading, ~0.5 s, excluded: that favours Petrel slightly, by the peers' process
 * start-up, a few ms; the quic-go wrapper's mount namespace set-up adds ~10-50 ms to quic-go clients).
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort, peers } from '../test/support/peers.js';
import { makeWww } from './lib/peers.js';
import { selected, type BenchOptions, type BenchRow, type PeerFigure } from './lib/types.js';
import { cmd, errText, prepareBundle, petrelRuntime, figure, log, med, missing, ngtcp2Missing, petrelCmd, quicGoMissing, sameFile, scenario, type ScenarioResult } from './quic-lib.js';

type Www = ReturnType<typeof makeWww>;

interface Params {
  sizesMB: number[];
  reps: number;
  seqN: number;
  concN: number;
  conc: number;
}

function params(quick: boolean): Params {
  return quick ? { sizesMB: [10], reps: 2, seqN: 20, concN: 100, conc: 50 } : { sizesMB: [10, 200], reps: 3, seqN: 200, concN: 500, conc: 50 };
}

const certs = () => peers().certs;

/** Collects samples, process figures and errors of one kind of run. */
class Series {
  samples: number[] = [];
  errors: string[] = [];
  srvRss: number[] = [];
  cliRss: number[] = [];
  srvCpu: number[] = [];
  cliCpu: number[] = [];
  add(r: ScenarioResult, value: () => number, check?: () => string | null): void {
    if (!r.ok) {
      this.errors.push(r.error ?? 'failed');
      return;
    }
    const bad = check?.();
    if (bad) {
      this.errors.push(bad);
      return;
    }
    const v = value();
    if (!(v > 0) || !Number.isFinite(v)) {
      this.errors.push(`no figure: ${r.clientOut.slice(-200)}`);
      return;
    }
    this.samples.push(v);
    if (r.server) {
      this.srvRss.push(r.server.maxRssMB);
      this.srvCpu.push(r.server.cpuS);
    }
    if (r.client) {
      this.cliRss.push(r.client.maxRssMB);
      this.cliCpu.push(r.client.cpuS);
    }
  }
  fig(): PeerFigure {
    return figure(this.samples, this.errors);
  }
  proc(): Record<string, number> {
    return { serverRssMB: med(this.srvRss), clientRssMB: med(this.cliRss), serverCpuS: med(this.srvCpu), clientCpuS: med(this.cliCpu) };
  }
}

function petrelFig(s: Series): { petrel?: number[]; petrelMissing?: string } {
  return s.samples.length ? { petrel: s.samples } : { petrelMissing: `all runs failed: ${s.errors[0] ?? '?'}` };
}

// ---------------------------------------------------------------------------------------------
// Bulk

async function bulk(w: Www, mb: number, reps: number, filter: string[]): Promise<BenchRow[]> {
  const name = `quic/bulk-${mb}MB`;
  const file = `f${mb}M`;
  const src = path.join(w.www, file);
  const out = path.join(w.dl, file);
  const c = certs();
  const limitS = Math.max(60, mb * 3);
  const gbit = (ms: number) => (mb * 8) / ms;
  const tmp = path.join(w.dir, 't');
  fs.mkdirSync(tmp, { recursive: true });
  const check = () => (sameFile(src, out) ? null : 'downloaded file differs');
  const rows: BenchRow[] = [];

  // Petrel ↔ Petrel (hq-interop)
  const pp = new Series();
  if (selected(name, filter)) {
    for (let i = 0; i < reps; i++) {
      fs.rmSync(out, { force: true });
      const port = await freePort('udp');
      log(`${name}: petrel ← petrel #${i + 1}`);
      const r = await scenario({
        srv: petrelCmd([], 'server', 'hq', '127.0.0.1', String(port), w.www, c.cert, c.key),
        cli: petrelCmd([], 'get', 'hq', `https://127.0.0.1:${port}/${file}`, out, c.ca),
        port,
        limitS,
        tmp,
      });
      pp.add(r, () => gbit(Number(r.result?.ms)), check);
    }
    rows.push({ name, unit: 'Gbit/s', ...petrelFig(pp), notes: `Petrel: ${mb} MB over hq-interop, time inside the client process (connect to last byte)`, extra: { petrel: pp.proc(), errors: pp.errors } });
  }

  // quic-go, in a network namespace: quic-go ← quic-go, quic-go ← Petrel, Petrel ← quic-go
  const qgMiss = quicGoMissing();
  const qgCli = `${name} [quic-go client]`;
  const qgSrv = `${name} [quic-go server]`;
  const qgSelf = new Series();
  if (selected(qgCli, filter) || selected(qgSrv, filter) || selected(`${name} rss`, filter) || selected(`${name} cpu`, filter)) {
    const qgA = new Series();
    const qgB = new Series();
    if (!qgMiss) {
      const qg = peers().bins.quicGo!;
      const url = `https://127.0.0.1:443/${file}`;
      for (let i = 0; i < reps; i++) {
        log(`${name}: quic-go ← quic-go, quic-go ← petrel, petrel ← quic-go #${i + 1}`);
        fs.rmSync(out, { force: true });
        let r = await scenario({ srv: cmd(qg, 'server', 'transfer', w.www), cli: cmd(qg, 'client', 'transfer', w.dl, url), port: 443, netns: true, limitS, tmp });
        qgSelf.add(r, () => gbit(r.wallMs), check);
        fs.rmSync(out, { force: true });
        r = await scenario({ srv: petrelCmd([], 'server', 'hq', '127.0.0.1', '443', w.www, c.cert, c.key), cli: cmd(qg, 'client', 'transfer', w.dl, url), port: 443, netns: true, limitS, tmp });
        qgA.add(r, () => gbit(r.wallMs), check);
        fs.rmSync(out, { force: true });
        r = await scenario({ srv: cmd(qg, 'server', 'transfer', w.www), cli: petrelCmd([], 'get', 'hq', url, out, c.ca), port: 443, netns: true, limitS, tmp });
        qgB.add(r, () => gbit(Number(r.result?.ms)), check);
      }
    }
    const peer: PeerFigure = qgMiss ? missing(qgMiss) : qgSelf.fig();
    const fa = qgMiss ? { petrelMissing: `quic-go unavailable: ${qgMiss}` } : petrelFig(qgA);
    const fb = qgMiss ? { petrelMissing: `quic-go unavailable: ${qgMiss}` } : petrelFig(qgB);
    rows.push({ name: qgCli, unit: 'Gbit/s', ...fa, peers: { 'quic-go server': peer }, notes: 'quic-go hq-interop client (wall time) against Petrel\'s server vs quic-go\'s server', extra: { petrel: qgA.proc(), peer: qgSelf.proc(), errors: qgA.errors } });
    rows.push({ name: qgSrv, unit: 'Gbit/s', ...fb, peers: { 'quic-go client': peer }, notes: 'Petrel hq-interop client (in-process time) against quic-go\'s server vs quic-go\'s client (wall time)', extra: { petrel: qgB.proc(), peer: qgSelf.proc(), errors: qgB.errors } });
  }

  // ngtcp2 over h3: gtlsclient ← gtlsserver, gtlsclient ← Petrel h3, Petrel h3 ← gtlsserver
  const ngMiss = ngtcp2Missing();
  const ngCli = `${name} [gtlsclient]`;
  const ngSrv = `${name} [gtlsserver]`;
  const ngSelf = new Series();
  if (selected(ngCli, filter) || selected(ngSrv, filter) || selected(`${name} rss`, filter) || selected(`${name} cpu`, filter)) {
    const ngA = new Series();
    const ngB = new Series();
    if (!ngMiss) {
      const b = peers().bins;
      const gtlsserver = (port: number) => cmd(b.gtlsserver!, '-q', '-d', w.www, '127.0.0.1', String(port), c.key, c.cert);
      const gtlsclient = (port: number) => cmd(b.gtlsclient!, '-q', '--exit-on-all-streams-close', '--download', w.dl, '127.0.0.1', String(port), `https://127.0.0.1:${port}/${file}`);
      for (let i = 0; i < reps; i++) {
        log(`${name}: ngtcp2 ← ngtcp2, gtlsclient ← petrel h3, petrel h3 ← gtlsserver #${i + 1}`);
        fs.rmSync(out, { force: true });
        let port = await freePort('udp');
        let r = await scenario({ srv: gtlsserver(port), cli: gtlsclient(port), port, limitS, tmp });
        ngSelf.add(r, () => gbit(r.wallMs), check);
        fs.rmSync(out, { force: true });
        port = await freePort('udp');
        r = await scenario({ srv: petrelCmd([], 'server', 'h3', '127.0.0.1', String(port), w.www, c.cert, c.key), cli: gtlsclient(port), port, limitS, tmp });
        ngA.add(r, () => gbit(r.wallMs), check);
        fs.rmSync(out, { force: true });
        port = await freePort('udp');
        r = await scenario({ srv: gtlsserver(port), cli: petrelCmd([], 'get', 'h3', `https://127.0.0.1:${port}/${file}`, out, c.ca), port, limitS, tmp });
        ngB.add(r, () => gbit(Number(r.result?.ms)), check);
      }
    }
    const peer: PeerFigure = ngMiss ? missing(ngMiss) : ngSelf.fig();
    const fa = ngMiss ? { petrelMissing: `ngtcp2 unavailable: ${ngMiss}` } : petrelFig(ngA);
    const fb = ngMiss ? { petrelMissing: `ngtcp2 unavailable: ${ngMiss}` } : petrelFig(ngB);
    rows.push({ name: ngCli, unit: 'Gbit/s', ...fa, peers: { gtlsserver: peer }, notes: 'ngtcp2 gtlsclient (h3, wall time) against Petrel\'s h3 server vs gtlsserver', extra: { petrel: ngA.proc(), peer: ngSelf.proc(), errors: ngA.errors } });
    rows.push({ name: ngSrv, unit: 'Gbit/s', ...fb, peers: { gtlsclient: peer }, notes: 'Petrel h3 client (in-process time) against gtlsserver vs gtlsclient (wall time)', extra: { petrel: ngB.proc(), peer: ngSelf.proc(), errors: ngB.errors } });
  }

  // Per-process peak RSS and CPU seconds of the self-to-self runs.
  const procRow = (suffix: string, unit: string, pick: (s: Series) => number[], what: string): void => {
    const rn = `${name} ${suffix}`;
    if (!selected(rn, filter)) return;
    const pv = pick(pp);
    const pf = (s: Series, miss: string | null): PeerFigure => (miss ? missing(miss) : pick(s).length ? pick(s) : missing(`no successful run: ${s.errors[0] ?? 'not run'}`));
    rows.push({
      name: rn,
      unit,
      higherIsBetter: false,
      ...(pv.length ? { petrel: pv } : { petrelMissing: pp.errors[0] ?? 'not run' }),
      peers: { ngtcp2: pf(ngSelf, ngMiss), 'quic-go': pf(qgSelf, qgMiss) },
      notes: `${what} (/usr/bin/time), self-to-self ${mb} MB runs; gtlsserver mmaps the served file, so its RSS includes the file`,
    });
  };
  procRow('rss-server', 'MB', (s) => s.srvRss, 'peak RSS of the server process');
  procRow('rss-client', 'MB', (s) => s.cliRss, 'peak RSS of the client process');
  procRow('cpu-server', 'CPU s', (s) => s.srvCpu, 'CPU seconds (user+sys) of the server process');
  procRow('cpu-client', 'CPU s', (s) => s.cliCpu, 'CPU seconds (user+sys) of the client process');
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Handshakes

async function handshakeRows(w: Www, prm: Params, filter: string[]): Promise<BenchRow[]> {
  const c = certs();
  const rows: BenchRow[] = [];
  const tmp = path.join(w.dir, 't');
  fs.mkdirSync(tmp, { recursive: true });
  const rate = (n: number, ms: number) => (n * 1000) / ms;
  const petrelRate = (r: ScenarioResult, n: number) => (Number(r.result?.fail) === 0 ? rate(Number(r.result?.ok), Number(r.result?.ms)) : NaN);
  const failCheck = (r: ScenarioResult) => () => (r.result && Number(r.result.fail) > 0 ? `${r.result.fail} of ${prmN(r)} connections failed: ${r.result.firstError}` : null);
  const prmN = (r: ScenarioResult) => Number(r.result?.ok ?? 0) + Number(r.result?.fail ?? 0);

  const seq = 'quic/handshakes';
  if (selected(seq, filter)) {
    log(`${seq}: petrel x${prm.seqN}`);
    const s = new Series();
    const port = await freePort('udp');
    const r = await scenario({
      srv: petrelCmd([], 'server', 'hq', '127.0.0.1', String(port), w.www, c.cert, c.key),
      cli: petrelCmd([], 'handshakes', 'hq', `https://127.0.0.1:${port}/small`, String(prm.seqN), '1', c.ca),
      port,
      tmp,
    });
    s.add(r, () => petrelRate(r, prm.seqN), failCheck(r));
    rows.push({ name: seq, unit: 'conn/s', ...petrelFig(s), notes: `Petrel: ${prm.seqN} sequential hq-interop connections in one client process, after ${Math.max(3, Math.ceil(prm.seqN / 10))} uncounted warm-up connections (JIT)`, extra: { petrel: s.proc() } });
  }

  const seqQg = 'quic/handshakes [quic-go client]';
  if (selected(seqQg, filter)) {
    const miss = quicGoMissing();
    const self = new Series();
    const vsPetrel = new Series();
    if (!miss) {
      const qg = peers().bins.quicGo!;
      const urls = new Array<string>(prm.seqN).fill('https://127.0.0.1:443/small');
      log(`${seqQg}: quic-go multiconnect x${prm.seqN} ← quic-go, ← petrel`);
      let r = await scenario({ srv: cmd(qg, 'server', 'multiconnect', w.www), cli: cmd(qg, 'client', 'multiconnect', w.dl, ...urls), port: 443, netns: true, tmp });
      self.add(r, () => rate(prm.seqN, r.wallMs));
      r = await scenario({ srv: petrelCmd([], 'server', 'hq', '127.0.0.1', '443', w.www, c.cert, c.key), cli: cmd(qg, 'client', 'multiconnect', w.dl, ...urls), port: 443, netns: true, tmp });
      vsPetrel.add(r, () => rate(prm.seqN, r.wallMs));
    }
    rows.push({
      name: seqQg,
      unit: 'conn/s',
      ...(miss ? { petrelMissing: `quic-go unavailable: ${miss}` } : petrelFig(vsPetrel)),
      peers: { 'quic-go server': miss ? missing(miss) : self.fig() },
      notes: `quic-go multiconnect client, ${prm.seqN} sequential connections fetching 1 kB, against Petrel's server vs quic-go's`,
      extra: { petrel: vsPetrel.proc(), peer: self.proc() },
    });
  }

  const conc = 'quic/handshakes-concurrent';
  if (selected(conc, filter)) {
    const n = prm.concN;
    log(`${conc}: petrel x${n} (${prm.conc} at a time)`);
    const s = new Series();
    const port = await freePort('udp');
    const r = await scenario({
      srv: petrelCmd([], 'server', 'hq', '127.0.0.1', String(port), w.www, c.cert, c.key),
      cli: petrelCmd([], 'handshakes', 'hq', `https://127.0.0.1:${port}/small`, String(n), String(prm.conc), c.ca),
      port,
      tmp,
    });
    s.add(r, () => petrelRate(r, n), failCheck(r));
    const peersOut: Record<string, PeerFigure> = {};
    const ngMiss = ngtcp2Missing();
    if (ngMiss) peersOut.ngtcp2 = missing(ngMiss);
    else {
      log(`${conc}: ngtcp2 x${n} (xargs -P ${prm.conc})`);
      const b = peers().bins;
      const p2 = await freePort('udp');
      const loop = `seq ${n} | xargs -P ${prm.conc} -I{} timeout 10 ${cmd(b.gtlsclient!, '-q', '--exit-on-all-streams-close', '127.0.0.1', String(p2), `https://127.0.0.1:${p2}/small`)} >/dev/null 2>&1; echo XARGS_RC $?`;
      const rr = await scenario({ srv: cmd(b.gtlsserver!, '-q', '-d', w.www, '127.0.0.1', String(p2), c.key, c.cert), cli: cmd('bash', '-c', loop), port: p2, tmp });
      const x = new Series();
      x.add(rr, () => rate(n, rr.wallMs), () => (/XARGS_RC 0/.test(rr.clientOut) ? null : `some gtlsclient runs failed (${rr.clientOut.trim().slice(-80)})`));
      peersOut.ngtcp2 = x.fig();
    }
    const qgMiss = quicGoMissing();
    if (qgMiss) peersOut['quic-go'] = missing(qgMiss);
    else {
      log(`${conc}: quic-go x${n} (xargs -P ${prm.conc})`);
      const qg = peers().bins.quicGo!;
      const client = path.join(peers().dir!, 'bin', 'quic-go-client');
      const loop = `seq ${n} | xargs -P ${prm.conc} -I{} env TESTCASE=handshake timeout 10 ${cmd(client, 'https://127.0.0.1:443/small')} >/dev/null 2>&1; echo XARGS_RC $?`;
      const rr = await scenario({ srv: cmd(qg, 'server', 'handshake', w.www), cli: cmd(qg, 'run', 'tmpfs', w.dl, 'tmpfs', 'bash', '-c', loop), port: 443, netns: true, tmp });
      const x = new Series();
      x.add(rr, () => rate(n, rr.wallMs), () => (/XARGS_RC 0/.test(rr.clientOut) ? null : `some quic-go client runs failed (${rr.clientOut.trim().slice(-80)})`));
      peersOut['quic-go'] = x.fig();
    }
    rows.push({
      name: conc,
      unit: 'conn/s',
      ...petrelFig(s),
      peers: peersOut,
      notes: `${n} connections fetching 1 kB, ${prm.conc} at a time; Petrel: one client process (after ${Math.max(3, Math.ceil(n / 10))} uncounted warm-up connections); peers: one client process per connection (xargs -P ${prm.conc}, process start-up included)`,
      extra: { petrel: s.proc(), errors: s.errors },
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------

export async function runQuicBench(opts: BenchOptions): Promise<BenchRow[]> {
  const prm = params(opts.quick);
  await prepareBundle();
  const w = makeWww(prm.sizesMB);
  const rows: BenchRow[] = [];
  try {
    for (const mb of prm.sizesMB) {
      try {
        rows.push(...(await bulk(w, mb, prm.reps, opts.filter)));
      } catch (e) {
        rows.push({ name: `quic/bulk-${mb}MB`, unit: 'Gbit/s', petrelMissing: `bench error: ${errText(e)}` });
      }
    }
    rows.push(...(await handshakeRows(w, prm, opts.filter)));
  } finally {
    w.cleanup();
  }
  for (const r of rows) if (r.name === 'quic/bulk-10MB' || r.name === 'quic/handshakes') r.notes = `${r.notes ?? ''}; ${petrelRuntime()}`;
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const filter = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const { formatTable } = await import('./lib/report.js');
  console.log(formatTable(await runQuicBench({ quick, filter })));
}
