/**
 * Network simulator CLI: a shaping UDP relay between a client and a server on loopback.
 *
 *   node scripts/run-ts.mjs interop/netsim/cli.ts --listen 4434 --target 127.0.0.1:4433 \
 *     [--delay 15] [--rate 10] [--queue 25] [--loss 0.3] [--jitter MS] [--corrupt P] [--reorder P]
 *     [--reorder-delay MS] [--duplicate P] [--drop-first N] [--drop-type handshake[,initial...]]
 *     [--drop-type-count N] [--drop-index 0,3,7] [--blackhole FROM-TO (ms, repeatable)]
 *     [--rebind-at MS (repeatable)] [--rebind-side server|client] [--rebind-address 127.0.0.2]
 *     [--seed N] [--log FILE.jsonl] [--duration S] [--quiet]
 *     [--blackhole-cycle ON-OFF (ms: ON ms forwarding, OFF ms black, repeated for 10 min)]
 *     [--rebind-first MS --rebind-every MS (rebinds timed from the client's first datagram)]
 *     [--rebind-address A,B,... (cycled per rebind)] [--upstream-host ADDR] [--cross MBPS]
 *     [--follow-migration (a client address change moves the server-facing socket too)]
 *     [--log-payload (whole datagrams in the log, field hex: for decrypting with a key log)]
 *
 * Every shaping option applies to both directions; prefix it with up- (client → server) or
 * down- (server → client) for one direction only, e.g. --up-loss 0.1 --down-delay 30.
 * Defaults (quic-interop-runner-like): 15 ms one-way delay, 10 Mbit/s, 25-packet queue.
 * SIGUSR1 rebinds on demand (server side), SIGUSR2 rebinds the client side; SIGINT/SIGTERM or
 * --duration end it and print the statistics as JSON on stderr.
 */
import type { PacketType } from './classify.js';
import type { LinkConfig } from './link.js';
import { startRelay, type RebindOptions } from './relay.js';

const argv = process.argv.slice(2);
const both: LinkConfig = {};
const up: LinkConfig = {};
const down: LinkConfig = {};
let listen = 0;
let listenHost = '127.0.0.1';
let target: { host: string; port: number } | undefined;
let seed = 1;
let log: string | undefined;
let duration = 0;
let quiet = false;
let upstreamHost: string | undefined;
let crossMbps = 0;
let followMigration = false;
let logPayload = false;
let rebindFirst = -1;
let rebindEvery = 0;
let rebindAddresses: string[] = [];
const rebindAt: number[] = [];
const rebindOpts: RebindOptions = {};

function usage(msg?: string): never {
  if (msg) console.error(`netsim: ${msg}`);
  console.error('usage: cli.ts --listen PORT --target HOST:PORT [--delay MS --rate MBPS --queue N --loss P ...] (see the header of interop/netsim/cli.ts)');
  process.exit(2);
}

const num = (v: string | undefined, k: string): number => {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n)) usage(`--${k} needs a number`);
  return n;
};

function setLink(cfg: LinkConfig, key: string, v: string | undefined): boolean {
  switch (key) {
    case 'delay': cfg.delayMs = num(v, key); break;
    case 'jitter': cfg.jitterMs = num(v, key); break;
    case 'rate': cfg.rateMbps = num(v, key); break;
    case 'queue': cfg.queuePackets = num(v, key); break;
    case 'loss': cfg.loss = num(v, key); break;
    case 'corrupt': cfg.corrupt = num(v, key); break;
    case 'corrupt-bytes': cfg.corruptBytes = num(v, key); break;
    case 'corrupt-skip': cfg.corruptSkip = num(v, key); break;
    case 'reorder': cfg.reorder = num(v, key); break;
    case 'reorder-delay': cfg.reorderDelayMs = num(v, key); break;
    case 'duplicate': cfg.duplicate = num(v, key); break;
    case 'drop-first': cfg.dropFirst = num(v, key); break;
    case 'drop-type': cfg.dropTypes = (v ?? '').split(',').filter(Boolean) as PacketType[]; break;
    case 'drop-type-count': cfg.dropTypesCount = num(v, key); break;
    case 'drop-index': cfg.dropIndices = (v ?? '').split(',').map((x) => num(x, key)); break;
    case 'blackhole-cycle': {
      const m = /^(\d+)-(\d+)$/.exec(v ?? '');
      if (!m) usage('--blackhole-cycle ON-OFF (ms)');
      const on = Number(m![1]);
      const off = Number(m![2]);
      if (on + off <= 0) usage('--blackhole-cycle needs ON + OFF > 0');
      for (let t = on; t < 600_000; t += on + off) (cfg.blackholes ??= []).push({ fromMs: t, toMs: t + off });
      break;
    }
    case 'blackhole': {
      const m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(v ?? '');
      if (!m) usage('--blackhole FROM-TO (ms since start)');
      (cfg.blackholes ??= []).push({ fromMs: Number(m![1]), toMs: Number(m![2]) });
      break;
    }
    default: return false;
  }
  return true;
}

for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--') continue;
  if (!a.startsWith('--')) usage(`unexpected ${a}`);
  const key = a.slice(2);
  if (key === 'quiet') { quiet = true; continue; }
  if (key === 'follow-migration') { followMigration = true; continue; }
  if (key === 'log-payload') { logPayload = true; continue; }
  if (key === 'help') usage();
  const v = argv[++i];
  if (key === 'listen') {
    const m = /^(?:(.+):)?(\d+)$/.exec(v ?? '');
    if (!m) usage('--listen [HOST:]PORT');
    listenHost = m![1] ?? listenHost;
    listen = Number(m![2]);
  } else if (key === 'target') {
    const m = /^(.+):(\d+)$/.exec(v ?? '');
    if (!m) usage('--target HOST:PORT');
    target = { host: m![1]!, port: Number(m![2]) };
  } else if (key === 'seed') seed = num(v, key);
  else if (key === 'log') log = v;
  else if (key === 'duration') duration = num(v, key);
  else if (key === 'rebind-at') rebindAt.push(num(v, key));
  else if (key === 'rebind-side') rebindOpts.side = v === 'client' ? 'client' : 'server';
  else if (key === 'rebind-address') rebindAddresses = (v ?? '').split(',').filter(Boolean);
  else if (key === 'rebind-first') rebindFirst = num(v, key);
  else if (key === 'rebind-every') rebindEvery = num(v, key);
  else if (key === 'upstream-host') upstreamHost = v;
  else if (key === 'cross') crossMbps = num(v, key);
  else if (key.startsWith('up-')) { if (!setLink(up, key.slice(3), v)) usage(`unknown option ${a}`); }
  else if (key.startsWith('down-')) { if (!setLink(down, key.slice(5), v)) usage(`unknown option ${a}`); }
  else if (!setLink(both, key, v)) usage(`unknown option ${a}`);
}
if (!target) usage('--target is required');

const relay = await startRelay({
  listen: { host: listenHost, port: listen },
  target,
  up: { ...both, ...up },
  down: { ...both, ...down },
  seed,
  log,
  upstreamHost,
  crossMbps,
  followMigration,
  logPayload,
});
// The port on stdout's first line, for scripts that pass --listen 0.
console.log(`netsim listening on ${relay.address.host}:${relay.port} -> ${target.host}:${target.port} (upstream ${relay.upstreamAddress.host}:${relay.upstreamAddress.port})`);

const timers: NodeJS.Timeout[] = [];
let rebindCount = 0;
const doRebind = (o: RebindOptions) =>
  relay.rebind(rebindAddresses.length ? { ...o, address: rebindAddresses[rebindCount++ % rebindAddresses.length] } : o).then(
    (r) => quiet || console.log(`rebind ${o.side ?? 'server'}: ${r.from.host}:${r.from.port} -> ${r.to.host}:${r.to.port}`),
    (e: unknown) => console.error(`rebind failed: ${e instanceof Error ? e.message : String(e)}`),
  );
for (const ms of rebindAt) timers.push(setTimeout(() => void doRebind(rebindOpts), ms));
if (rebindFirst >= 0) {
  // Timed from the client's first datagram (the client process may start well after the relay).
  const poll = setInterval(() => {
    if (relay.stats.up.received === 0) return;
    clearInterval(poll);
    const next = (ms: number) => {
      timers.push(
        setTimeout(() => {
          void doRebind(rebindOpts);
          if (rebindEvery > 0) next(rebindEvery);
        }, ms),
      );
    };
    next(rebindFirst);
  }, 5);
  timers.push(poll);
}
process.on('SIGUSR1', () => void doRebind({ ...rebindOpts, side: 'server' }));
process.on('SIGUSR2', () => void doRebind({ ...rebindOpts, side: 'client' }));

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  for (const t of timers) clearTimeout(t);
  const stats = relay.stats;
  await relay.close();
  console.error(JSON.stringify(stats));
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
if (duration > 0) setTimeout(() => void stop(), duration * 1000);
