/** The crypto layer: every primitive the protocol uses, and nothing else. Backends are chosen in docs/crypto.md. */
export * from './bytes.js';
export * from './random.js';
export * from './hash.js';
export * from './aead.js';
export { X25519, X25519_KEY_BYTES, type KeyPair } from './x25519.js';
export { Ed25519, ED25519_SIGNATURE_BYTES } from './ed25519.js';
export { MlKem1024, type Kem } from './kem.js';
export { Secp256k1Schnorr } from './secp256k1.js';
