/**
 * Minimal strict DER reader (X.690). Used by key loading, SPKI extraction and the X.509 parser.
 * Every read is bounds-checked; malformed input throws DerError (callers turn it into a typed
 * parse error or a TLS alert). No BigInt: INTEGERs are returned as their content bytes.
 */

export class DerError extends Error {
  override readonly name = 'DerError';
}

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8String: 0x0c,
  PrintableString: 0x13,
  IA5String: 0x16,
  UTCTime: 0x17,
  GeneralizedTime: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export interface Tlv {
  tag: number;
  /** Content bytes (a view into the input). */
  value: Uint8Array;
  /** The whole element including tag and length (a view into the input). */
  raw: Uint8Array;
}

export class DerReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  peekTag(): number {
    if (this.pos >= this.buf.length) throw new DerError('unexpected end of DER data');
    return this.buf[this.pos]!;
  }

  /** Reads the next element; if `tag` is given it must match. Only single-byte tags (low-tag-number form). */
  read(tag?: number): Tlv {
    const b = this.buf;
    const start = this.pos;
    if (start + 2 > b.length) throw new DerError('truncated DER element');
    const t = b[start]!;
    if ((t & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported');
    if (tag !== undefined && t !== tag) throw new DerError(`expected DER tag 0x${tag.toString(16)}, got 0x${t.toString(16)}`);
    let len = b[start + 1]!;
    let p = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new DerError('unsupported DER length encoding');
      if (p + n > b.length) throw new DerError('truncated DER length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
      // DER: minimal length encoding.
      if (len < 0x80 || b[p] === 0) throw new DerError('non-minimal DER length');
      p += n;
    }
    if (p + len > b.length) throw new DerError('DER element overruns its container');
    this.pos = p + len;
    return { tag: t, value: b.subarray(p, p + len), raw: b.subarray(start, p + len) };
  }

  /** Reads the next element if its tag is `tag`, else returns undefined. */
  optional(tag: number): Tlv | undefined {
    if (this.done || this.buf[this.pos] !== tag) return undefined;
    return this.read(tag);
  }

  /** Reads a constructed element and returns a reader over its contents. */
  enter(tag: number): DerReader {
    return new DerReader(this.read(tag).value);
  }

  end(): void {
    if (!this.done) throw new DerError('trailing data in DER element');
  }
}

/** Decodes an OBJECT IDENTIFIER's content bytes to dotted form. */
export function oidToString(v: Uint8Array): string {
  if (v.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (acc === 0 && c === 0x80) throw new DerError('non-minimal OID arc');
    acc = acc * 128 + (c & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large');
    if (!(c & 0x80)) {
      if (parts.length === 0) {
        const first = acc < 80 ? Math.floor(acc / 40) : 2;
        parts.push(first, acc - first * 40);
      } else parts.push(acc);
      acc = 0;
    } else if (i === v.length - 1) throw new DerError('truncated OID');
  }
  return parts.join('.');
}

/** Encodes a DER length + tag header around `content`. */
export function derEncode(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const hdr = n < 0x80 ? [tag, n] : n < 0x100 ? [tag, 0x81, n] : n < 0x10000 ? [tag, 0x82, n >> 8, n & 0xff] : [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(hdr.length + n);
  out.set(hdr, 0);
  out.set(content, hdr.length);
  return out;
}

/** PEM → list of {label, der}. Ignores text outside BEGIN/END blocks. Throws DerError on bad base64. */
export function pemDecode(pem: string): { label: string; der: Uint8Array }[] {
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) {
    const b64 = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new DerError(`bad base64 in PEM block ${m[1]}`);
    out.push({ label: m[1]!, der: base64Decode(b64) });
  }
  return out;
}

function base64Decode(s: string): Uint8Array {
  // atob exists on Node >= 16 and every browser/runtime we target.
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function pemEncode(label: string, der: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < der.length; i++) bin += String.fromCharCode(der[i]!);
  const b64 = btoa(bin).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
