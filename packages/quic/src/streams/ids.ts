/**
 * Stream IDs (RFC 9000 §2.1): the two low bits say who opened the stream (0x1: server) and
 * whether it is unidirectional (0x2); the rest is the stream's index within its type.
 */
export const MAX_STREAMS_LIMIT = 2 ** 60;

export function isServerInitiated(id: number): boolean {
  return (id & 0x1) !== 0;
}
export function isUni(id: number): boolean {
  return (id & 0x2) !== 0;
}
export function isBidi(id: number): boolean {
  return (id & 0x2) === 0;
}
/** The stream's index among streams of its type (id >> 2, valid beyond 2^32). */
export function streamIndex(id: number): number {
  return Math.floor(id / 4);
}
export function makeStreamId(index: number, serverInitiated: boolean, uni: boolean): number {
  return index * 4 + (serverInitiated ? 1 : 0) + (uni ? 2 : 0);
}
/** True if the endpoint (`isServer`) opened stream `id`. */
export function isLocallyInitiated(id: number, isServer: boolean): boolean {
  return isServerInitiated(id) === isServer;
}
