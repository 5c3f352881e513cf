// The raw primitives under each backend, so that docs/crypto.md's choices can be re-checked on any machine.
import { createCipheriv, createHmac, diffieHellman, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { loadWasmMlKem, MlKem1024, mlKemBackendsInUse, nativeMlKem, nobleMlKem, useMlKem } from '../src/crypto/kem.js';
import { systemRng } from '../src/crypto/random.js';
import { sodium } from '../src/crypto/sodium.js';
import { nsPerOp } from './timing.js';

export interface PrimitiveFigure {
  readonly primitive: string;
  readonly backend: string;
  readonly opsPerSec: number;
}

export async function measurePrimitives(opts: { seconds: number }): Promise<PrimitiveFigure[]> {
  const s = opts.seconds;
  const out: PrimitiveFigure[] = [];
  const add = async (primitive: string, backend: string, op: () => unknown) =>
    out.push({ primitive, backend, opsPerSec: 1e9 / (await nsPerOp(s, () => void op())) });

  const a = generateKeyPairSync('x25519');
  const b = generateKeyPairSync('x25519');
  await add('X25519 DH', 'node:crypto (cached KeyObject)', () => diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey }));
  const na = x25519.utils.randomSecretKey();
  const nb = x25519.getPublicKey(x25519.utils.randomSecretKey());
  await add('X25519 DH', '@noble/curves', () => x25519.getSharedSecret(na, nb));
  const out32 = new Uint8Array(32);
  const sa = randomBytes(32);
  const sb = new Uint8Array(32);
  sodium.crypto_scalarmult_base(sb, randomBytes(32));
  await add('X25519 DH', 'libsodium (sodium-native, raw keys)', () => sodium.crypto_scalarmult(out32, sa, sb));
  await add('X25519 key pair', 'node:crypto (generateKeyPairSync)', () => generateKeyPairSync('x25519'));
  await add('X25519 key pair', 'libsodium (public key of 32 random bytes)', () => sodium.crypto_scalarmult_base(out32, randomBytes(32)));

  const e = generateKeyPairSync('ed25519');
  const msg = randomBytes(100);
  const sig = sign(null, msg, e.privateKey);
  await add('Ed25519 sign', 'node:crypto', () => sign(null, msg, e.privateKey));
  await add('Ed25519 verify', 'node:crypto', () => verify(null, msg, e.publicKey, sig));
  const ns = ed25519.utils.randomSecretKey();
  const nsig = ed25519.sign(msg, ns);
  const npub = ed25519.getPublicKey(ns);
  await add('Ed25519 sign', '@noble/curves', () => ed25519.sign(msg, ns));
  await add('Ed25519 verify', '@noble/curves', () => ed25519.verify(nsig, msg, npub));
  const spk = new Uint8Array(32);
  const ssk = new Uint8Array(64);
  sodium.crypto_sign_seed_keypair(spk, ssk, randomBytes(32));
  const ssig = new Uint8Array(64);
  await add('Ed25519 sign', 'libsodium (sodium-native)', () => sodium.crypto_sign_detached(ssig, msg, ssk));
  await add('Ed25519 verify', 'libsodium (sodium-native)', () => sodium.crypto_sign_verify_detached(ssig, msg, spk));

  const key = randomBytes(32);
  const kb = randomBytes(1024);
  await add('HMAC-SHA256 1 KB', 'node:crypto', () => createHmac('sha256', key).update(kb).digest());
  await add('HMAC-SHA256 1 KB', '@noble/hashes', () => hmac(sha256, key, kb));
  const nonce = randomBytes(12);
  await add('AES-256-GCM 1 KB', 'node:crypto', () => {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.update(kb);
    c.final();
    c.getAuthTag();
  });
  await add('AES-256-GCM 1 KB', '@noble/ciphers', () => gcm(key, nonce).encrypt(kb));

  out.push(...(await measureMlKem({ seconds: s })));
  return out;
}


/**
 * ML-KEM-1024 per backend, and MlKem1024 as callers get it (auto). Runs on any Node, without the
 * rest of the bench: `node dist/bench/mlkem.js`. "fresh key" = a new secret-key instance each call,
 * so native pays its key import, as a pre-key read from the store does.
 */
export async function measureMlKem(opts: { seconds: number }): Promise<PrimitiveFigure[]> {
  const out: PrimitiveFigure[] = [];
  const add = async (primitive: string, backend: string, op: () => unknown) =>
    out.push({ primitive, backend, opsPerSec: 1e9 / (await nsPerOp(opts.seconds, () => void op())) });
  const seed = randomBytes(64);
  const { publicKey, secretKey } = ml_kem1024.keygen(seed);
  const { cipherText } = ml_kem1024.encapsulate(publicKey);
  const backends = [nobleMlKem, nativeMlKem, await loadWasmMlKem()].flatMap((b) => (b ? [b] : []));
  for (const b of backends) {
    const label = b.name === 'noble' ? '@noble/post-quantum' : b.name === 'native' ? `node:crypto (Node ${process.versions.node})` : '@oqs/liboqs-js (WASM)';
    if (b.name === 'noble') await add('ML-KEM-1024 keygen', label, () => ml_kem1024.keygen(seed));
    else if (b.keyPair) await add('ML-KEM-1024 keygen', label, b.keyPair);
    await add(b.name === 'native' ? 'ML-KEM-1024 encapsulate, cached key' : 'ML-KEM-1024 encapsulate', label, () => b.encapsulate(publicKey));
    if (b.name === 'native') await add('ML-KEM-1024 encapsulate, fresh key', label, () => b.encapsulate(publicKey.slice()));
    await add(b.name === 'native' ? 'ML-KEM-1024 decapsulate, cached key' : 'ML-KEM-1024 decapsulate', label, () => b.decapsulate(cipherText, secretKey));
    if (b.name === 'native') await add('ML-KEM-1024 decapsulate, fresh key', label, () => b.decapsulate(cipherText, secretKey.slice()));
  }
  await useMlKem('auto');
  const inUse = mlKemBackendsInUse();
  const auto = (op: keyof typeof inUse) => `MlKem1024, systemRng (${inUse[op]})`;
  await add('ML-KEM-1024 keygen', auto('keyPair'), () => MlKem1024.keyPair(systemRng));
  await add('ML-KEM-1024 encapsulate, fresh key', auto('encapsulate'), () => MlKem1024.encapsulate(publicKey.slice(), systemRng));
  await add('ML-KEM-1024 decapsulate, fresh key', 'MlKem1024', () => MlKem1024.decapsulate(cipherText, secretKey.slice()));
  return out;
}
