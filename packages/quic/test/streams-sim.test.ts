/**
 * Streams over the recovery machinery: a client StreamManager sends several streams through
 * LossRecovery + NewReno over a lossy, reordering link (seeded) to a server StreamManager with small
 * flow-control windows; the server reads as data arrives and returns ACKs, MAX_DATA and
 * MAX_STREAM_DATA. Every byte must arrive exactly once in order, within the flow-control limits.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LossRecovery, PnSpace } from '../src/recovery.js';
import { RttEstimator } from '../src/rtt.js';
import { NewReno } from '../src/congestion/new-reno.js';
import { ReceivedPackets } from '../src/ack.js';
import { StreamManager, type PeerStreamLimits } from '../src/streams/manager.js';
import { newStreamChunkOut } from '../src/streams/send.js';
import { SendState } from '../src/streams/send.js';

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Info { id: number; off: number; len: number; fin: boolean }
type Ev =
  | { t: number; k: 'data'; pn: number; info: Info; bytes: Uint8Array }
  | { t: number; k: 'ack'; iv: number[]; n: number; maxData: number; msd: [number, number][] };

function run(seed: number, loss: number) {
  const r = rng(seed);
  const server = new StreamManager({ isServer: true, connWindow: 96 * 1024, streamWindowBidiRemote: 32 * 1024, maxStreamsBidi: 10 });
  const client = new StreamManager({ isServer: false });
  const serverParams: PeerStreamLimits = {
    initialMaxData: 96 * 1024,
    initialMaxStreamDataBidiLocal: 256 * 1024,
    initialMaxStreamDataBidiRemote: 32 * 1024,
    initialMaxStreamDataUni: 0,
    initialMaxStreamsBidi: 10,
    initialMaxStreamsUni: 0,
  };
  client.setPeerLimits(serverParams);
  server.setPeerLimits({ ...serverParams, initialMaxStreamDataBidiRemote: 256 * 1024 });

  const sources = new Map<number, Uint8Array>();
  for (let k = 0; k < 5; k++) {
    const id = client.open(true);
    const src = Uint8Array.from({ length: 100_000 + k * 7_777 }, (_, i) => (i * 31 + k * 7) & 0xff);
    sources.set(id, src);
    const s = client.sendStreams.get(id)!;
    assert.is(s.write(src), src.length);
    s.finish();
  }
  const received = new Map<number, number[]>();

  const rtt = new RttEstimator();
  const cc = new NewReno(rtt);
  const rec = new LossRecovery<Info>({
    isServer: false,
    cc,
    rtt,
    handler: {
      onAcked: (_s, _pn, i) => i && client.sendStreams.get(i.id)?.onAcked(i.off, i.len, i.fin),
      onLost: (_s, _pn, i) => i && client.sendStreams.get(i.id)?.onLost(i.off, i.len, i.fin),
    },
  });
  rec.setHandshakeConfirmed(0);
  const rp = new ReceivedPackets({ maxAckDelay: 10 });
  const evs: Ev[] = [];
  const push = (e: Ev) => {
    let i = evs.length;
    while (i > 0 && evs[i - 1]!.t > e.t) i--;
    evs.splice(i, 0, e);
  };
  const out = newStreamChunkOut();
  let pn = 0;
  let now = 0;
  let rr = 0;
  const ids = [...sources.keys()];

  const sendData = () => {
    for (let guard = 0; guard < 10000; guard++) {
      const probe = rec.probesNeeded(PnSpace.application) > 0;
      if (!probe && !cc.canSend(1200)) return;
      let sent = false;
      for (let k = 0; k < ids.length && !sent; k++) {
        const id = ids[(rr + k) % ids.length]!;
        if (client.nextChunk(id, 1100, out)) {
          const bytes = new Uint8Array(out.length);
          client.sendStreams.get(id)!.copy(out.offset, out.length, bytes, 0);
          const info = { id, off: out.offset, len: out.length, fin: out.fin };
          rec.onPacketSent(PnSpace.application, pn, now, out.length + 40, true, true, info);
          if (r() >= loss) push({ t: now + 20 + r() * 10, k: 'data', pn, info, bytes }); // jitter reorders
          pn++;
          sent = true;
          rr = (rr + k + 1) % ids.length;
        }
      }
      if (!sent) return;
    }
  };

  const sendAck = () => {
    const iv: number[] = [];
    const n = rp.fillIntervals(iv, 32);
    rp.onAckSent();
    const msd: [number, number][] = [];
    for (const [id, s] of server.recvStreams) {
      const m = s.pollMaxStreamData(now);
      if (m >= 0) msd.push([id, m]);
    }
    push({ t: now + 20, k: 'ack', iv, n, maxData: server.pollMaxData(now), msd });
  };

  sendData();
  let steps = 0;
  let ackTimer = -1;
  while (steps++ < 500_000) {
    const done = ids.every((id) => client.sendStreams.get(id)!.state === SendState.dataRecvd);
    if (done) break;
    const to = rec.nextTimeout();
    const ev = evs[0];
    const nextAck = ackTimer >= 0 ? ackTimer : Infinity;
    const tEv = ev ? ev.t : Infinity;
    const tTo = to ?? Infinity;
    const t = Math.min(tEv, tTo, nextAck);
    if (t === Infinity) break;
    now = Math.max(now, t);
    if (t === nextAck) {
      ackTimer = -1;
      if (rp.wantAckNow(now)) sendAck();
      continue;
    }
    if (t === tTo && tTo <= tEv) {
      rec.onTimeout(now);
      sendData();
      continue;
    }
    evs.shift();
    if (ev!.k === 'data') {
      const e = ev!;
      if (!rp.onPacketReceived(e.pn, now, true)) continue;
      server.onStreamFrame(e.info.id, e.info.off, e.bytes, e.info.fin);
      let c: Uint8Array | null;
      while ((c = server.read(e.info.id, Infinity, now, rtt.smoothedRtt))) {
        let arr = received.get(e.info.id);
        if (!arr) received.set(e.info.id, (arr = []));
        for (const b of c) arr.push(b);
      }
      if (rp.wantAckNow(now) || server.connRecv.wantsUpdate) sendAck();
      else if (ackTimer < 0) ackTimer = rp.ackTimeout() ?? -1;
    } else {
      const e = ev!;
      rec.onAckReceived(PnSpace.application, e.iv, e.n, 0, now);
      if (e.maxData >= 0) client.onMaxData(e.maxData);
      for (const [id, m] of e.msd) client.onMaxStreamData(id, m);
      sendData();
    }
  }
  return { sources, received, client, server, now, pn };
}

for (const [seed, loss] of [[1, 0], [2, 0.03], [3, 0.1]] as const) {
  test(`5 streams, small windows, ${loss * 100}% loss with reordering (seed ${seed}): exact delivery`, () => {
    const res = run(seed, loss);
    for (const [id, src] of res.sources) {
      const got = res.received.get(id);
      assert.ok(got, `stream ${id} got nothing`);
      assert.is(got!.length, src.length, `stream ${id} length`);
      assert.equal(new Uint8Array(got!), src, `stream ${id} bytes`);
      assert.is(res.client.sendStreams.get(id)!.state, SendState.dataRecvd);
    }
    // flow control was exercised: the connection window had to be raised several times
    assert.ok(res.server.connRecv.limit > 96 * 1024 * 3, `limit ${res.server.connRecv.limit}`);
    assert.ok(res.client.connSend.used <= res.server.connRecv.limit);
  });
}

test.run();
