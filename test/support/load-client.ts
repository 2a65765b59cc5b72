/**
 * Child-process HTTP/3 clients that start transfers and then vanish (the parent SIGKILLs this
 * process: sockets gone, no CONNECTION_CLOSE). Used by runVanish() in test/support/load-vanish.ts.
 *
 * argv[2]: JSON { port, n, caPem }. Even clients download /bytes/8000000 and read one chunk, odd
 * clients upload to /sink a body that never ends. Sends { type: 'started', n } once every client
 * has its transfer under way (first response bytes read / first upload chunks sent). Starts on the
 * parent's first IPC message.
 */
import process from 'node:process';
import { connectH3, type H3Client } from '../../packages/h3/src/node.js';

const { port, n, caPem } = JSON.parse(process.argv[2] ?? '{}') as { port: number; n: number; caPem: string };
const clients: H3Client[] = [];

async function one(i: number): Promise<void> {
  const c = await connectH3({ host: '127.0.0.1', port }, { ca: caPem, serverName: 'localhost', handshakeTimeoutMs: 60_000 });
  clients.push(c);
  if (i % 2 === 0) {
    const res = await c.fetch(`https://localhost:${port}/bytes/8000000`);
    const reader = res.body!.getReader();
    await reader.read(); // one chunk, then the rest stays unread (flow control stalls the server)
  } else {
    let pulls = 0;
    let started!: () => void;
    const startedP = new Promise<void>((r) => (started = r));
    const body = new ReadableStream<Uint8Array>({
      pull(ctl) {
        pulls++;
        if (pulls <= 4) ctl.enqueue(new Uint8Array(16_384).fill(0x62));
        if (pulls === 4) started();
        // after that: never more data, never closed
      },
    });
    void c.fetch(`https://localhost:${port}/sink`, { method: 'POST', body, duplex: 'half' } as RequestInit).catch(() => {});
    await startedP;
  }
}

// Start when the parent has its baseline.
await new Promise<void>((r) => process.once('message', () => r()));
const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
const errors: Record<string, number> = {};
for (const r of results) if (r.status === 'rejected') {
  const m = r.reason instanceof Error ? r.reason.message : String(r.reason);
  errors[m] = (errors[m] ?? 0) + 1;
}
const failed = results.filter((r) => r.status === 'rejected').length;
process.send!({ type: 'started', n: n - failed, failed, errors });
// Stay alive (with open sockets) until killed.
setInterval(() => {}, 1 << 30);
