/**
 * HTTP message validation (RFC 9114 §4.1.2 malformed messages, §4.2 fields, §4.3 control data).
 * Failures throw {@link MessageError}; the connection turns it into a stream error H3_MESSAGE_ERROR.
 */
import type { FieldLine } from './qpack/decoder.js';

export class MessageError extends Error {
  override readonly name = 'MessageError';
}

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path']);

// tchar (RFC 9110 §5.6.2) without uppercase letters.
const NAME_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// Field values: no NUL, CR, LF (RFC 9110 §5.5), no leading/trailing whitespace.
const BAD_VALUE_RE = /[\0\r\n]|^[ \t]|[ \t]$/;

export interface ValidatedMessage {
  /** Parsed Content-Length, or -1 when absent. */
  contentLength: number;
}

function checkRegular(name: string, value: string, out: ValidatedMessage, isRequest: boolean): void {
  if (!NAME_RE.test(name)) {
    throw new MessageError(/[A-Z]/.test(name) ? `uppercase field name ${name}` : `invalid field name ${JSON.stringify(name)}`);
  }
  if (BAD_VALUE_RE.test(value)) throw new MessageError(`invalid value for ${name}`);
  if (CONNECTION_SPECIFIC.has(name)) throw new MessageError(`connection-specific field ${name}`);
  if (name === 'te') {
    if (!isRequest || value.trim().toLowerCase() !== 'trailers') throw new MessageError(`te: ${value}`);
  } else if (name === 'content-length') {
    // A list of identical values is allowed (RFC 9110 §8.6).
    let n = -1;
    for (const part of value.split(',')) {
      const t = part.trim();
      if (!/^[0-9]{1,15}$/.test(t)) throw new MessageError(`invalid content-length ${value}`);
      const v = Number(t);
      if (n !== -1 && v !== n) throw new MessageError(`conflicting content-length ${value}`);
      n = v;
    }
    if (out.contentLength !== -1 && out.contentLength !== n) throw new MessageError('conflicting content-length');
    out.contentLength = n;
  }
}

/**
 * Validates a request header section (§4.3.1). With `extendedConnect` (we sent
 * SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, RFC 9220 §3), CONNECT may carry :protocol together with
 * :scheme, :path and :authority.
 */
export function validateRequest(fields: readonly FieldLine[], extendedConnect = false): ValidatedMessage & { method: string; protocol?: string } {
  const out: ValidatedMessage & { method: string; protocol?: string } = { contentLength: -1, method: '' };
  const pseudo = new Map<string, string>();
  let regular = false;
  let host: string | undefined;
  for (const [name, value] of fields) {
    if (name.startsWith(':')) {
      if (regular) throw new MessageError(`pseudo-header ${name} after regular fields`);
      if (!REQUEST_PSEUDO.has(name) && !(extendedConnect && name === ':protocol')) {
        throw new MessageError(`invalid request pseudo-header ${name}`);
      }
      if (pseudo.has(name)) throw new MessageError(`duplicate ${name}`);
      if (BAD_VALUE_RE.test(value)) throw new MessageError(`invalid value for ${name}`);
      pseudo.set(name, value);
      continue;
    }
    regular = true;
    checkRegular(name, value, out, true);
    if (name === 'host') host = value;
  }
  const method = pseudo.get(':method');
  if (!method || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) throw new MessageError('missing or invalid :method');
  out.method = method;
  const authority = pseudo.get(':authority');
  const protocol = pseudo.get(':protocol');
  if (protocol !== undefined) {
    // RFC 9220 §4: extended CONNECT: all of :scheme, :path, :authority are required.
    if (method !== 'CONNECT') throw new MessageError(':protocol in a request that is not CONNECT');
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(protocol)) throw new MessageError('invalid :protocol');
    if (!pseudo.get(':scheme') || !pseudo.get(':path') || !authority) {
      throw new MessageError('extended CONNECT without :scheme, :path and :authority');
    }
    out.protocol = protocol;
    return out;
  }
  if (method === 'CONNECT') {
    // Plain CONNECT (§4.4).
    if (pseudo.has(':scheme') || pseudo.has(':path')) throw new MessageError('CONNECT with :scheme or :path');
    if (!authority) throw new MessageError('CONNECT without :authority');
    return out;
  }
  const scheme = pseudo.get(':scheme');
  const path = pseudo.get(':path');
  if (!scheme) throw new MessageError('missing :scheme');
  if (path === undefined || path === '') throw new MessageError('missing or empty :path');
  if (path !== '*' && !path.startsWith('/') && (scheme === 'http' || scheme === 'https')) {
    throw new MessageError(`invalid :path ${path}`);
  }
  if (scheme === 'http' || scheme === 'https') {
    if (authority === undefined && host === undefined) throw new MessageError('missing :authority and host');
    if (authority === '' || host === '') throw new MessageError('empty :authority or host');
    if (authority?.includes('@')) throw new MessageError(':authority with userinfo');
    if (authority !== undefined && host !== undefined && authority !== host) {
      throw new MessageError(':authority and host differ');
    }
  }
  return out;
}

/** Validates a response header section (§4.3.2). Returns the status. */
export function validateResponse(fields: readonly FieldLine[]): ValidatedMessage & { status: number } {
  const out = { contentLength: -1, status: 0 };
  let regular = false;
  let status: string | undefined;
  for (const [name, value] of fields) {
    if (name.startsWith(':')) {
      if (regular) throw new MessageError(`pseudo-header ${name} after regular fields`);
      if (name !== ':status') throw new MessageError(`invalid response pseudo-header ${name}`);
      if (status !== undefined) throw new MessageError('duplicate :status');
      status = value;
      continue;
    }
    regular = true;
    checkRegular(name, value, out, false);
  }
  if (status === undefined || !/^[1-9][0-9]{2}$/.test(status)) throw new MessageError('missing or invalid :status');
  out.status = Number(status);
  return out;
}

/** Validates a trailer section: no pseudo-headers (§4.3). */
export function validateTrailers(fields: readonly FieldLine[]): void {
  const scratch = { contentLength: -1 };
  for (const [name, value] of fields) {
    if (name.startsWith(':')) throw new MessageError(`pseudo-header ${name} in trailers`);
    checkRegular(name, value, scratch, false);
  }
}
