import { createRequire } from 'node:module';

/** The libsodium calls we use, from sodium-native (prebuilt, no install script; it ships no types). */
interface SodiumNative {
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  /** Throws when the result is all zero (a low-order point). */
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean;
  crypto_hash_sha256(out: Uint8Array, m: Uint8Array): void;
  crypto_hash_sha512(out: Uint8Array, m: Uint8Array): void;
}

export const sodium = createRequire(import.meta.url)('sodium-native') as SodiumNative;
