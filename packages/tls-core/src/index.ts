export * from './errors.js';
export * from './crypto/provider.js';
export * from './handshake/api.js';
export { certificateSpki } from './x509/spki.js';
export { DerReader, DerError, pemDecode, pemEncode } from './util/der.js';
export * from './hkdf.js';
export * from './crypto/index.js';
export * from './x509/index.js';
