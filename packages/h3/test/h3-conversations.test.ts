// Random HTTP/3 conversations over the in-memory transport: many concurrent requests with random
// header sets (so the dynamic tables churn), bodies, trailers and cancellations, with delivery
// reordered across streams (order within a stream kept). Every completed exchange must arrive
// intact and no connection error may occur.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { H3Event } from '../src/connection.js';
import type { TransportEvent } from '../src/transport.js';
import type { FieldLine } from '../src/qpack/decoder.js';
import { Pair } from './h3-support.js';
import { Rng } from './support.js';

function key(ev: TransportEvent): string {
  return 'id' in ev ? String(ev.id) : ev.type;
}

/** Delivers one random stream's oldest pending event; false if nothing is pending. */
function step(rng: Rng, p: Pair, cev: H3Event[], sev: H3Event[]): boolean {
  const sides = [p.ct, p.st].filter((t) => t.inbox.length);
  if (!sides.length) return false;
  const t = rng.pick(sides);
  const keys = [...new Set(t.inbox.map(key))];
  const k = rng.pick(keys);
  const i = t.inbox.findIndex((e) => key(e) === k);
  const [ev] = t.inbox.splice(i, 1);
  if (t === p.ct) cev.push(...p.client.handleEvent(ev!));
  else sev.push(...p.server.handleEvent(ev!));
  return true;
}

test('random concurrent conversations with reordering', () => {
  for (let seed = 1; seed <= 12; seed++) {
    const rng = new Rng(seed * 7919);
    const p = new Pair(
      { qpackMaxTableCapacity: rng.pick([0, 200, 1000, 4096]), qpackBlockedStreams: rng.int(4), encoder: { insertThreshold: 1 + rng.int(2) } },
      { qpackMaxTableCapacity: rng.pick([0, 300, 4096]), qpackBlockedStreams: rng.int(4) },
    );
    const cev: H3Event[] = [];
    const sev: H3Event[] = [];
    const sent = new Map<number, { headers: FieldLine[]; body: number; cancelled: boolean }>();
    const responded = new Set<number>();
    let handledServer = 0;
    let handledClient = 0;
    for (let round = 0; round < 400; round++) {
      const a = rng.int(10);
      if (a < 2 && sent.size < 40) {
        const headers: FieldLine[] = [
          [':method', rng.pick(['GET', 'POST'])], [':scheme', 'https'], [':authority', rng.pick(['a.example', 'b.example'])],
          [':path', `/${rng.pick(['x', 'y', 'z'])}/${rng.int(5)}`], ['x-r', String(rng.int(3))], ['user-agent', 'petrel'],
        ];
        const body = headers[0]![1] === 'POST' ? rng.int(3000) : 0;
        const id = p.client.sendRequest(headers, body === 0);
        if (body) {
          p.client.sendData(id, new Uint8Array(body).fill(id & 0xff));
          if (rng.int(2)) p.client.sendTrailers(id, [['x-sum', String(body)]]);
          else p.client.sendData(id, new Uint8Array(0), true);
        }
        sent.set(id, { headers, body, cancelled: false });
      } else if (a === 2 && sent.size) {
        const id = rng.pick([...sent.keys()]);
        const s = sent.get(id)!;
        if (!s.cancelled && rng.int(4) === 0) {
          s.cancelled = true;
          p.client.cancel(id);
        }
      } else {
        for (let k = 0; k < 5; k++) step(rng, p, cev, sev);
      }
      // The server answers every complete request.
      for (; handledServer < sev.length; handledServer++) {
        const e = sev[handledServer]!;
        if (e.type === 'end' && !responded.has(e.streamId)) {
          responded.add(e.streamId);
          const n = rng.int(5000);
          try {
            p.server.sendHeaders(e.streamId, [[':status', '200'], ['x-stream', String(e.streamId)], ['content-length', String(n)]]);
            p.server.sendData(e.streamId, new Uint8Array(n).fill(7), true);
          } catch {
            // the client may have cancelled meanwhile
          }
        }
      }
      handledClient = cev.length;
    }
    while (step(rng, p, cev, sev) || sev.length > handledServer) {
      for (; handledServer < sev.length; handledServer++) {
        const e = sev[handledServer]!;
        if (e.type === 'end' && !responded.has(e.streamId)) {
          responded.add(e.streamId);
          try {
            p.server.sendHeaders(e.streamId, [[':status', '200'], ['x-stream', String(e.streamId)], ['content-length', '10']]);
            p.server.sendData(e.streamId, new Uint8Array(10), true);
          } catch {
            // cancelled
          }
        }
      }
    }
    assert.ok(handledClient >= 0);
    for (const e of [...cev, ...sev]) assert.ok(e.type !== 'connectionError', `seed ${seed}: ${JSON.stringify(e)}`);
    // Requests as received by the server match what was sent.
    const reqHeaders = sev.filter((e): e is Extract<H3Event, { type: 'headers' }> => e.type === 'headers');
    for (const h of reqHeaders) assert.equal(h.headers, sent.get(h.streamId)!.headers);
    const reqBytes = new Map<number, number>();
    for (const e of sev) if (e.type === 'data') reqBytes.set(e.streamId, (reqBytes.get(e.streamId) ?? 0) + e.data.length);
    for (const e of sev) if (e.type === 'end') assert.is(reqBytes.get(e.streamId) ?? 0, sent.get(e.streamId)!.body);
    // Every request not cancelled got its full response.
    let complete = 0;
    for (const [id, s] of sent) {
      if (s.cancelled) continue;
      const ends = cev.filter((e) => e.type === 'end' && e.streamId === id);
      assert.is(ends.length, 1, `seed ${seed} stream ${id}`);
      const hs = cev.find((e) => e.type === 'headers' && e.streamId === id) as Extract<H3Event, { type: 'headers' }>;
      assert.equal(hs.headers.find(([n]) => n === 'x-stream'), ['x-stream', String(id)]);
      complete++;
    }
    assert.ok(complete > 5, `seed ${seed}: complete ${complete}`);
    assert.is(p.client.encoder.knownReceivedCount, p.client.encoder.insertCount);
  }
});

test.run();
