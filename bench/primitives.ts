// The raw primitives under each backend, so that docs/crypto.md's choices can be re-checked on any machine.
import { createCipheriv, createHmac, diffieHellman, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { createMLKEM1024 } from '@oqs/liboqs-js';
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

  const kp = ml_kem1024.keygen();
  const ct = ml_kem1024.encapsulate(kp.publicKey).cipherText;
  await add('ML-KEM-1024 encapsulate', '@noble/post-quantum', () => ml_kem1024.encapsulate(kp.publicKey));
  await add('ML-KEM-1024 decapsulate', '@noble/post-quantum', () => ml_kem1024.decapsulate(ct, kp.secretKey));
  const oqs = await createMLKEM1024();
  const okp = oqs.generateKeyPair();
  const oct = oqs.encapsulate(okp.publicKey).ciphertext;
  await add('ML-KEM-1024 encapsulate', '@oqs/liboqs-js (WASM)', () => oqs.encapsulate(okp.publicKey));
  await add('ML-KEM-1024 decapsulate', '@oqs/liboqs-js (WASM)', () => oqs.decapsulate(oct, okp.secretKey));
  oqs.destroy();
  return out;
}
