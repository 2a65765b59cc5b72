/**
 * qlog output for the Node driver: one JSON-SEQ file per connection (RFC 7464: every record starts
 * with the record separator 0x1e and ends with a line feed), qlog 0.3 header first
 * (draft-ietf-quic-qlog-main-schema "JSON-SEQ" serialization, readable by qvis), then the events the
 * Connection reports through `TransportConfig.qlog`, with times relative to the connection start.
 * Files are named `<ODCID hex>_<role>.sqlog` (as quic-interop-runner expects, one per connection)
 * and written in batches (64 KiB, 1 s after the last write, or at close), synchronously, so a
 * crash or a SIGKILL loses at most a batch: a connection that hangs still leaves its trace.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { QlogEvent } from '../config.js';

const RS = '\x1e';

export function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

export class QlogWriter {
  private fd: number | null = null;
  private buffered: string[] = [];
  private bufferedBytes = 0;
  private closed = false;
  private odcid: string | null;
  readonly file: string | null = null;
  private failed = false;
  /** Event time of the last write (ms, the events' clock; the first write waits for the ODCID). */
  private lastWrite: number;

  /**
   * `odcid` names the file; a client does not know its ODCID up front (the Connection picks it), so
   * it may pass null: the first event carrying `dst_cid`/`odcid` (or else a random name) decides.
   */
  constructor(
    private readonly dir: string,
    private readonly role: 'client' | 'server',
    odcid: Uint8Array | null,
    private readonly startTime: number,
  ) {
    this.odcid = odcid ? hex(odcid) : null;
    this.lastWrite = startTime;
  }

  /** The sink to put in TransportConfig.qlog. */
  readonly sink = (e: QlogEvent): void => {
    if (this.closed || this.failed) return;
    if (this.odcid === null) {
      const d = e.data as Record<string, unknown>;
      const c = d['odcid'] ?? d['dst_cid'] ?? d['original_destination_connection_id'];
      if (typeof c === 'string' && /^[0-9a-f]+$/i.test(c)) this.odcid = c;
    }
    const rec = `${RS}${JSON.stringify({ time: round(e.time - this.startTime), name: e.name, data: e.data })}\n`;
    this.buffered.push(rec);
    this.bufferedBytes += rec.length;
    if (this.bufferedBytes > 64 * 1024 || e.time - this.lastWrite >= 1000) {
      this.lastWrite = e.time;
      this.flush();
    }
  };

  /** Names the file (client: once the ODCID is known). */
  setOdcid(odcid: Uint8Array): void {
    if (this.fd === null) this.odcid = hex(odcid);
  }

  flush(): void {
    if (this.failed || this.buffered.length === 0) return;
    try {
      if (this.fd === null) {
        fs.mkdirSync(this.dir, { recursive: true });
        const name = this.odcid ?? `${this.role}-${process.pid}-${Math.floor(Math.random() * 1e9).toString(16)}`;
        const file = path.join(this.dir, `${name}_${this.role}.sqlog`);
        (this as { file: string | null }).file = file;
        this.fd = fs.openSync(file, 'a');
        const header = {
          qlog_version: '0.3',
          qlog_format: 'JSON-SEQ',
          title: `petrel ${this.role}`,
          trace: {
            vantage_point: { name: 'petrel', type: this.role },
            common_fields: { ODCID: this.odcid ?? undefined, time_format: 'relative', reference_time: this.startTime },
          },
        };
        fs.writeSync(this.fd, `${RS}${JSON.stringify(header)}\n`);
      }
      fs.writeSync(this.fd, this.buffered.join(''));
    } catch {
      this.failed = true; // logging must never break the connection
    }
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.fd !== null) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* ignore */
      }
      this.fd = null;
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
