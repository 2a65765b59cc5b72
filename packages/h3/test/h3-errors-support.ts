export { GET, RawPeer, concat } from './h3-support.js';
import { unhex } from './support.js';
export const unhexed = (s: string): Uint8Array => unhex(s);
