/**
 * X.509 certificate parser (RFC 5280 §4). Structural only: it decodes every field the validator
 * needs and rejects malformed DER; policy (which extensions are acceptable, validity, ...) is
 * decided by the path validator. The only exception that leaves `parseCertificate` is a
 * CertificateError (kind 'malformed' or 'unsupported-version').
 */
import { DerError, DerReader, Tag, oidToString, type Tlv } from '../util/der.js';
import { CertificateError, malformed } from './errors.js';
import { OID, attributeShortName } from './oids.js';

export interface AlgorithmIdentifier {
  oid: string;
  /** The parameters element (TLV), or null when absent. */
  params: Uint8Array | null;
  /** The whole AlgorithmIdentifier TLV (compared byte for byte with the TBS copy). */
  raw: Uint8Array;
}

export interface AttributeTypeAndValue {
  type: string;
  value: string;
}

export interface Name {
  /** The whole Name TLV. Issuer/subject chaining compares these bytes (as webpki does). */
  raw: Uint8Array;
  /** RDNs in order, each a set of attributes; and each RDN's raw TLV (for directoryName constraints). */
  rdns: AttributeTypeAndValue[][];
  rdnRaw: Uint8Array[];
  /** Readable form, e.g. "CN=example.com, O=Example". */
  text: string;
}

export type GeneralName =
  | { type: 'dns'; value: string }
  /** iPAddress: 4 or 16 bytes in a SAN; address || mask (8 or 32 bytes) in name constraints. */
  | { type: 'ip'; bytes: Uint8Array }
  | { type: 'email'; value: string }
  | { type: 'uri'; value: string }
  | { type: 'directory'; name: Name }
  /** otherName, x400Address, ediPartyName, registeredID: preserved, not interpreted. */
  | { type: 'other'; tag: number; raw: Uint8Array };

export interface BasicConstraints {
  ca: boolean;
  /** null when absent (no limit). */
  pathLen: number | null;
}

export interface NameConstraints {
  permitted: GeneralName[];
  excluded: GeneralName[];
}

export interface Extension {
  oid: string;
  critical: boolean;
  /** extnValue content (the DER inside the OCTET STRING). */
  value: Uint8Array;
}

/** keyUsage bits (RFC 5280 §4.2.1.3): bit n of the BIT STRING is `1 << n` here. */
export const KeyUsage = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;

export interface Certificate {
  der: Uint8Array;
  /** The TBSCertificate TLV (what the signature covers). */
  tbs: Uint8Array;
  /** 1, 2 or 3. */
  version: number;
  serial: Uint8Array;
  signatureAlgorithm: AlgorithmIdentifier;
  /** The signature bits (BIT STRING content without the unused-bits octet). */
  signature: Uint8Array;
  issuer: Name;
  subject: Name;
  /** Validity, ms since the epoch (inclusive bounds, RFC 5280 §4.1.2.5). */
  notBefore: number;
  notAfter: number;
  /** SubjectPublicKeyInfo TLV. */
  spki: Uint8Array;
  spkiAlgorithm: AlgorithmIdentifier;
  extensions: Extension[];
  basicConstraints: BasicConstraints | null;
  keyUsage: number | null;
  extKeyUsage: string[] | null;
  subjectAltNames: GeneralName[] | null;
  nameConstraints: NameConstraints | null;
  subjectKeyId: Uint8Array | null;
  authorityKeyId: Uint8Array | null;
  /** Critical extensions this implementation does not process (the validator rejects them). */
  unhandledCritical: string[];
  /** subject == issuer (RFC 5280 §6.1: "self-issued"). */
  selfIssued: boolean;
}

/** Parses a DER certificate. Throws only CertificateError. `index` is the chain position for messages. */
export function parseCertificate(der: Uint8Array, index?: number): Certificate {
  try {
    return parse(der);
  } catch (e) {
    if (e instanceof CertificateError) {
      if (index === undefined) throw e;
      throw new CertificateError(e.kind, `certificate ${index}: ${e.message}`, { index });
    }
    if (e instanceof DerError || e instanceof RangeError || e instanceof URIError) {
      throw malformed(`${index === undefined ? 'certificate' : `certificate ${index}`}: malformed DER (${e.message})`, index);
    }
    throw e;
  }
}

function parse(der: Uint8Array): Certificate {
  const outer = new DerReader(der);
  const certTlv = outer.read(Tag.SEQUENCE);
  outer.end();
  if (certTlv.raw.length !== der.length) throw new DerError('trailing data after certificate');
  const cert = new DerReader(certTlv.value);
  const tbsTlv = cert.read(Tag.SEQUENCE);
  const signatureAlgorithm = parseAlgorithm(cert.read(Tag.SEQUENCE));
  const signature = bitStringBytes(cert.read(Tag.BIT_STRING));
  cert.end();

  const tbs = new DerReader(tbsTlv.value);
  let version = 1;
  const v = tbs.optional(0xa0);
  if (v) {
    const r = new DerReader(v.value);
    const n = smallInteger(r.read(Tag.INTEGER));
    r.end();
    if (n > 2) throw new CertificateError('unsupported-version', `unsupported certificate version ${n + 1}`);
    version = n + 1;
  }
  const serialTlv = tbs.read(Tag.INTEGER);
  if (serialTlv.value.length === 0) throw new DerError('empty serial number');
  const tbsSig = parseAlgorithm(tbs.read(Tag.SEQUENCE));
  if (!bytesEqual(tbsSig.raw, signatureAlgorithm.raw)) throw malformed('signatureAlgorithm differs from the TBSCertificate signature field (RFC 5280 §4.1.1.2)');
  const issuer = parseName(tbs.read(Tag.SEQUENCE));
  const validity = tbs.enter(Tag.SEQUENCE);
  const notBefore = parseTime(validity.read());
  const notAfter = parseTime(validity.read());
  validity.end();
  const subject = parseName(tbs.read(Tag.SEQUENCE));
  const spkiTlv = tbs.read(Tag.SEQUENCE);
  const spkiR = new DerReader(spkiTlv.value);
  const spkiAlgorithm = parseAlgorithm(spkiR.read(Tag.SEQUENCE));
  bitStringBytes(spkiR.read(Tag.BIT_STRING));
  spkiR.end();
  // issuerUniqueID [1] / subjectUniqueID [2] (IMPLICIT BIT STRING): v2/v3 only, ignored.
  for (const tag of [0x81, 0x82]) {
    if (tbs.optional(tag) && version < 2) throw malformed('unique identifiers in a v1 certificate');
  }
  const extensions: Extension[] = [];
  const extTlv = tbs.optional(0xa3);
  if (extTlv) {
    if (version !== 3) throw malformed('extensions in a non-v3 certificate');
    const outerExt = new DerReader(extTlv.value);
    const list = outerExt.enter(Tag.SEQUENCE);
    outerExt.end();
    if (list.done) throw malformed('empty extensions list');
    while (!list.done) {
      const e = list.enter(Tag.SEQUENCE);
      const oid = oidToString(e.read(Tag.OID).value);
      let critical = false;
      const b = e.optional(Tag.BOOLEAN);
      if (b) critical = booleanValue(b);
      const value = e.read(Tag.OCTET_STRING).value;
      e.end();
      if (extensions.some((x) => x.oid === oid)) throw malformed(`duplicate extension ${oid} (RFC 5280 §4.2)`);
      extensions.push({ oid, critical, value });
    }
  }
  tbs.end();

  const c: Certificate = {
    der,
    tbs: tbsTlv.raw,
    version,
    serial: serialTlv.value,
    signatureAlgorithm,
    signature,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: spkiTlv.raw,
    spkiAlgorithm,
    extensions,
    basicConstraints: null,
    keyUsage: null,
    extKeyUsage: null,
    subjectAltNames: null,
    nameConstraints: null,
    subjectKeyId: null,
    authorityKeyId: null,
    unhandledCritical: [],
    selfIssued: bytesEqual(issuer.raw, subject.raw),
  };
  for (const ext of extensions) {
    const r = new DerReader(ext.value);
    switch (ext.oid) {
      case OID.basicConstraints:
        c.basicConstraints = parseBasicConstraints(r);
        break;
      case OID.keyUsage:
        c.keyUsage = parseKeyUsage(r.read(Tag.BIT_STRING));
        break;
      case OID.extKeyUsage: {
        const seq = r.enter(Tag.SEQUENCE);
        const list: string[] = [];
        while (!seq.done) list.push(oidToString(seq.read(Tag.OID).value));
        if (list.length === 0) throw malformed('empty extKeyUsage');
        c.extKeyUsage = list;
        break;
      }
      case OID.subjectAltName: {
        const seq = r.enter(Tag.SEQUENCE);
        const names: GeneralName[] = [];
        while (!seq.done) names.push(parseGeneralName(seq.read(), false));
        if (names.length === 0) throw malformed('empty subjectAltName');
        c.subjectAltNames = names;
        break;
      }
      case OID.nameConstraints:
        c.nameConstraints = parseNameConstraints(r);
        break;
      case OID.subjectKeyIdentifier:
        c.subjectKeyId = r.read(Tag.OCTET_STRING).value;
        break;
      case OID.authorityKeyIdentifier: {
        const seq = r.enter(Tag.SEQUENCE);
        const kid = seq.optional(0x80);
        c.authorityKeyId = kid ? kid.value : null;
        seq.optional(0xa1); // authorityCertIssuer
        seq.optional(0x82); // authorityCertSerialNumber
        seq.end();
        break;
      }
      default:
        if (ext.critical) c.unhandledCritical.push(ext.oid);
        continue;
    }
    r.end();
  }
  return c;
}

function parseAlgorithm(t: Tlv): AlgorithmIdentifier {
  const r = new DerReader(t.value);
  const oid = oidToString(r.read(Tag.OID).value);
  const params = r.done ? null : r.read().raw;
  r.end();
  return { oid, params, raw: t.raw };
}

function bitStringBytes(t: Tlv): Uint8Array {
  if (t.value.length === 0 || t.value[0] !== 0) throw new DerError('BIT STRING with unused bits');
  return t.value.subarray(1);
}

function booleanValue(t: Tlv): boolean {
  if (t.value.length !== 1 || (t.value[0] !== 0 && t.value[0] !== 0xff)) throw new DerError('bad BOOLEAN');
  return t.value[0] === 0xff;
}

/** A non-negative INTEGER that fits in 31 bits. */
function smallInteger(t: Tlv): number {
  const v = t.value;
  if (v.length === 0 || v.length > 4) throw new DerError('INTEGER out of range');
  if (v[0]! & 0x80) throw new DerError('negative INTEGER');
  if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw new DerError('non-minimal INTEGER');
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

function parseBasicConstraints(r: DerReader): BasicConstraints {
  const seq = r.enter(Tag.SEQUENCE);
  let ca = false;
  const b = seq.optional(Tag.BOOLEAN);
  if (b) ca = booleanValue(b);
  let pathLen: number | null = null;
  const p = seq.optional(Tag.INTEGER);
  if (p) pathLen = smallInteger(p);
  seq.end();
  return { ca, pathLen };
}

function parseKeyUsage(t: Tlv): number {
  const v = t.value;
  if (v.length < 2 || v.length > 3 || v[0]! > 7) throw new DerError('bad keyUsage BIT STRING');
  // Unused bits must be zero (DER).
  const unused = v[0]!;
  const last = v[v.length - 1]!;
  if (last & ((1 << unused) - 1)) throw new DerError('keyUsage unused bits not zero');
  let bits = 0;
  for (let i = 1; i < v.length; i++) {
    const byte = v[i]!;
    for (let j = 0; j < 8; j++) if (byte & (0x80 >> j)) bits |= 1 << ((i - 1) * 8 + j);
  }
  return bits;
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

function ia5(v: Uint8Array): string {
  for (const b of v) if (b > 0x7f) throw new DerError('non-ASCII byte in IA5String');
  return latin1.decode(v);
}

function parseGeneralName(t: Tlv, inConstraint: boolean): GeneralName {
  switch (t.tag) {
    case 0x82:
      return { type: 'dns', value: ia5(t.value) };
    case 0x87: {
      const n = t.value.length;
      const ok = inConstraint ? n === 8 || n === 32 : n === 4 || n === 16;
      if (!ok) throw new DerError(`iPAddress of ${n} bytes`);
      return { type: 'ip', bytes: t.value };
    }
    case 0x81:
      return { type: 'email', value: ia5(t.value) };
    case 0x86:
      return { type: 'uri', value: ia5(t.value) };
    case 0xa4: {
      const r = new DerReader(t.value);
      const name = parseName(r.read(Tag.SEQUENCE));
      r.end();
      return { type: 'directory', name };
    }
    case 0xa0: // otherName
    case 0xa3: // x400Address
    case 0xa5: // ediPartyName
    case 0x88: // registeredID
      return { type: 'other', tag: t.tag, raw: t.raw };
    default:
      throw new DerError(`bad GeneralName tag 0x${t.tag.toString(16)}`);
  }
}

function parseNameConstraints(r: DerReader): NameConstraints {
  const seq = r.enter(Tag.SEQUENCE);
  const nc: NameConstraints = { permitted: [], excluded: [] };
  const subtrees = (t: Tlv, into: GeneralName[]): void => {
    const s = new DerReader(t.value);
    if (s.done) throw new DerError('empty GeneralSubtrees');
    while (!s.done) {
      const st = s.enter(Tag.SEQUENCE);
      into.push(parseGeneralName(st.read(), true));
      // RFC 5280 §4.2.1.10: minimum MUST be zero (DEFAULT, so absent in DER), maximum absent.
      if (!st.done) throw malformed('name constraint with minimum/maximum');
    }
  };
  const p = seq.optional(0xa0);
  if (p) subtrees(p, nc.permitted);
  const x = seq.optional(0xa1);
  if (x) subtrees(x, nc.excluded);
  seq.end();
  if (!p && !x) throw malformed('empty nameConstraints (RFC 5280 §4.2.1.10)');
  return nc;
}

export function parseName(t: Tlv): Name {
  const r = new DerReader(t.value);
  const rdns: AttributeTypeAndValue[][] = [];
  const rdnRaw: Uint8Array[] = [];
  while (!r.done) {
    const setTlv = r.read(Tag.SET);
    const set = new DerReader(setTlv.value);
    const rdn: AttributeTypeAndValue[] = [];
    if (set.done) throw new DerError('empty RDN');
    while (!set.done) {
      const atv = set.enter(Tag.SEQUENCE);
      const type = oidToString(atv.read(Tag.OID).value);
      const value = decodeString(atv.read());
      atv.end();
      rdn.push({ type, value });
    }
    rdns.push(rdn);
    rdnRaw.push(setTlv.raw);
  }
  const text = rdns.map((rdn) => rdn.map((a) => `${attributeShortName[a.type] ?? a.type}=${a.value}`).join('+')).join(', ');
  return { raw: t.raw, rdns, rdnRaw, text };
}

/** Attribute values for display (never used for security decisions beyond exact-byte comparisons). */
function decodeString(t: Tlv): string {
  const v = t.value;
  switch (t.tag) {
    case 0x0c: // UTF8String
      return utf8.decode(v);
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString (treated as Latin-1)
    case 0x1a: // VisibleString
      return latin1.decode(v);
    case 0x1e: {
      // BMPString (UTF-16BE)
      let s = '';
      for (let i = 0; i + 1 < v.length; i += 2) s += String.fromCharCode((v[i]! << 8) | v[i + 1]!);
      return s;
    }
    case 0x1c: {
      // UniversalString (UTF-32BE)
      let s = '';
      for (let i = 0; i + 3 < v.length; i += 4) {
        const cp = ((v[i]! << 24) | (v[i + 1]! << 16) | (v[i + 2]! << 8) | v[i + 3]!) >>> 0;
        s += cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
      }
      return s;
    }
    default:
      return `#${hex(t.raw)}`;
  }
}

function parseTime(t: Tlv): number {
  let s: string;
  let year: number;
  const v = t.value;
  for (const b of v) if (b > 0x7f) throw new DerError('bad Time');
  const str = latin1.decode(v);
  if (t.tag === Tag.UTCTime) {
    if (!/^\d{12}Z$/.test(str)) throw new DerError(`bad UTCTime ${JSON.stringify(str)}`);
    const yy = Number(str.slice(0, 2));
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
    s = str.slice(2);
  } else if (t.tag === Tag.GeneralizedTime) {
    if (!/^\d{14}Z$/.test(str)) throw new DerError(`bad GeneralizedTime ${JSON.stringify(str)}`);
    year = Number(str.slice(0, 4));
    s = str.slice(4);
  } else throw new DerError('bad Time tag');
  const month = Number(s.slice(0, 2));
  const day = Number(s.slice(2, 4));
  const hour = Number(s.slice(4, 6));
  const minute = Number(s.slice(6, 8));
  const second = Number(s.slice(8, 10));
  const dim = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > dim || hour > 23 || minute > 59 || second > 59) throw new DerError(`bad time value ${str}`);
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
