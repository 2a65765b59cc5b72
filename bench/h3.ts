/**
 * HTTP/3 requests per second on one connection: small GETs (100-byte response), N requests with
 * WINDOW of them in flight, all from the same client — Petrel's h3 client (connectH3 + fetch, in
 * bench/quic-proc.ts `h3req`) — against three servers in the same run:
 *
 *   h3/requests   petrel = Petrel h3 server (serve()); peers = quic-go's HTTP/3 interop server
 *                 (TESTCASE=http3, UDP port 443, so it runs with the client inside `unshare -n`)
 *                 and ngtcp2's gtlsserver (nghttp3)
 *
 * The figure: completed requests / time from the first request to the last response (handshake
 * excluded, after N/10 warm-up requests, measured inside the client process). Since the client is the same, the ratio compares
 * the servers (the client's own cost is in every figure: on 2 cores it shares the CPU with the server).
 * N = 500 (--quick) / 5000, WINDOW = 16, 2 (--quick) / 3 repetitions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort, peers } from '../test/support/peers.js';
import { makeWww } from './lib/peers.js';
import { selected, type BenchOptions, type BenchRow, type PeerFigure } from './lib/types.js';
import { cmd, errText, prepareBundle, petrelRuntime, figure, log, missing, ngtcp2Missing, petrelCmd, quicGoMissing, scenario, type ScenarioResult } from './quic-lib.js';

const FILE = 'r100';

export async function runH3Bench(opts: BenchOptions): Promise<BenchRow[]> {
  const name = 'h3/requests';
  if (!selected(name, opts.filter)) return [];
  const n = opts.quick ? 500 : 5000;
  const window = 16;
  const reps = opts.quick ? 2 : 3;
  const c = peers().certs;
  await prepareBundle();
  const w = makeWww([]);
  fs.writeFileSync(path.join(w.www, FILE), Buffer.alloc(100, 0x62));
  const tmp = path.join(w.dir, 't');
  fs.mkdirSync(tmp);
  const client = (port: number) => petrelCmd([], 'h3req', `https://127.0.0.1:${port}/${FILE}`, String(n), String(window), c.ca);
  const take = (r: ScenarioResult, samples: number[], errors: string[]): void => {
    if (!r.ok) errors.push(r.error ?? 'failed');
    else if (!r.result) errors.push(`no result: ${r.clientOut.slice(-200)}`);
    else if (Number(r.result.fail) > 0 || Number(r.result.bytes) !== n * 100) errors.push(`${r.result.fail} of ${n} requests failed (${r.result.firstError}), ${r.result.bytes} bytes`);
    else samples.push((Number(r.result.ok) * 1000) / Number(r.result.ms));
  };
  try {
    const pS: number[] = [];
    const pE: string[] = [];
    const qS: number[] = [];
    const qE: string[] = [];
    const gS: number[] = [];
    const gE: string[] = [];
    const qgMiss = quicGoMissing();
    const ngMiss = ngtcp2Missing();
    for (let i = 0; i < reps; i++) {
      log(`${name}: petrel client x${n} (window ${window}) → petrel, quic-go, gtlsserver #${i + 1}`);
      try {
        let port = await freePort('udp');
        take(await scenario({ srv: petrelCmd([], 'server', 'h3', '127.0.0.1', String(port), w.www, c.cert, c.key), cli: client(port), port, tmp }), pS, pE);
        if (!qgMiss) take(await scenario({ srv: cmd(peers().bins.quicGo!, 'server', 'http3', w.www), cli: client(443), port: 443, netns: true, tmp }), qS, qE);
        if (!ngMiss) {
          port = await freePort('udp');
          take(await scenario({ srv: cmd(peers().bins.gtlsserver!, '-q', '-d', w.www, '127.0.0.1', String(port), c.key, c.cert), cli: client(port), port, tmp }), gS, gE);
        }
      } catch (e) {
        pE.push(errText(e));
      }
    }
    const peersOut: Record<string, PeerFigure> = {
      'quic-go http3 server': qgMiss ? missing(qgMiss) : figure(qS, qE),
      'ngtcp2 gtlsserver': ngMiss ? missing(ngMiss) : figure(gS, gE),
    };
    return [
      {
        name,
        unit: 'req/s',
        ...(pS.length ? { petrel: pS } : { petrelMissing: `all runs failed: ${pE[0] ?? '?'}` }),
        peers: peersOut,
        notes: `${n} GETs of a 100-byte file on one connection, ${window} in flight, Petrel's h3 client against each server (time from first request to last response); ${petrelRuntime()}`,
        extra: { errors: { petrel: pE, quicGo: qE, ngtcp2: gE } },
      },
    ];
  } finally {
    w.cleanup();
  }
}
