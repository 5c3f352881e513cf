// The floor under each figure: the primitive calls one message (or one setup) cannot do without,
// each timed on its own in the same run, summed. Counted from the protocol as src/ratchet and
// src/pqxdh implement it (docs/protocol.md), each on the fastest backend measured here: node:crypto
// for hashes and AES, PQXDH's HKDF-SHA512 as src/crypto/hash.ts writes it out on libsodium,
// libsodium for X25519 and Ed25519 (raw keys, no import), native libsecp256k1 (bcrypto) for
// BIP-340, ML-KEM as src/crypto/kem.ts picks it.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomFillSync } from 'node:crypto';
import schnorr from 'bcrypto/lib/native/schnorr-libsecp256k1.js';
import { loadWasmMlKem, MlKem1024, mlKemBackendsInUse } from '../src/crypto/kem.js';
import { systemRng } from '../src/crypto/random.js';
import { hkdfSha512 } from '../src/crypto/hash.js';
import { utf8 } from '../src/crypto/bytes.js';
import { Secp256k1Schnorr } from '../src/crypto/secp256k1.js';
import { sodium } from '../src/crypto/sodium.js';
import { nsPerOp } from './timing.js';

/** Sizes as a 1 KB text message has them: AD = two 32-byte fingerprints, an encrypted header of 12 + 40 + 16 bytes. */
const AD_BYTES = 64;
const HEADER_BYTES = 40;
const ENC_HEADER_BYTES = 12 + HEADER_BYTES + 16;
const MESSAGE_BYTES = 1024;
const CBC_BYTES = MESSAGE_BYTES + 16;
/** PQXDH's KDF input: F (32) ‖ four DH outputs ‖ the ML-KEM shared secret. */
const PQXDH_IKM_BYTES = 32 + 4 * 32 + 32;

export const FLOOR_PRIMITIVES = {
  hmacChainStep: 'HMAC-SHA256, 32 B key, 1 B (KDF_CK half)',
  hmacBody: `HMAC-SHA256 over AD ‖ header ‖ ciphertext (${AD_BYTES + ENC_HEADER_BYTES + CBC_BYTES} B)`,
  hkdfMessageKeys: 'HKDF-SHA256 → 80 B (message keys)',
  hkdfRoot: 'HKDF-SHA256 → 96 B (KDF_RK, KDF_INIT)',
  hkdfPqxdh: `HKDF-SHA512 of ${PQXDH_IKM_BYTES} B → 32 B (PQXDH KDF; HMACs on libsodium's SHA-512)`,
  cbcEncrypt: `AES-256-CBC encrypt ${MESSAGE_BYTES} B`,
  cbcDecrypt: `AES-256-CBC decrypt ${CBC_BYTES} B`,
  gcmSealHeader: `AES-256-GCM seal ${HEADER_BYTES} B header`,
  gcmOpenHeader: 'AES-256-GCM open the header',
  gcmOpenHeaderFail: 'AES-256-GCM open under the wrong key (trial decryption)',
  nonce: 'random 12 B (header nonce)',
  x25519Keygen: 'X25519 key pair: its public key from 32 random bytes (libsodium)',
  x25519Dh: 'X25519 DH on raw keys (libsodium)',
  ed25519Verify: 'Ed25519 verify, 100 B, raw key (libsodium)',
  schnorrVerify: 'BIP-340 verify (libsecp256k1 native, bcrypto)',
  mlKemEncapsulate: 'ML-KEM-1024 encapsulate, their key as bytes',
  mlKemDecapsulate: 'ML-KEM-1024 decapsulate, our key held',
} as const;
export type FloorPrimitive = keyof typeof FLOOR_PRIMITIVES;
type Recipe = Partial<Record<FloorPrimitive, number>>;

const add = (...rs: Recipe[]): Recipe => {
  const out: Recipe = {};
  for (const r of rs) for (const [k, n] of Object.entries(r) as [FloorPrimitive, number][]) out[k] = (out[k] ?? 0) + n;
  return out;
};

// RatchetEncryptHE: KDF_CK, the header sealed under a random nonce, message keys, CBC, the MAC.
const ENCRYPT: Recipe = { hmacChainStep: 2, nonce: 1, gcmSealHeader: 1, hkdfMessageKeys: 1, cbcEncrypt: 1, hmacBody: 1 };
// RatchetDecryptHE past the message's chain key: message keys, the MAC, CBC.
const DECRYPT_BODY: Recipe = { hmacChainStep: 2, hkdfMessageKeys: 1, hmacBody: 1, cbcDecrypt: 1 };
// A DH ratchet step: two DHs, a new ratchet key, two KDF_RKs.
const DH_STEP: Recipe = { x25519Dh: 2, x25519Keygen: 1, hkdfRoot: 2 };
// Decoding a public identity checks its Ed25519 self-signature and its Nostr key's BIP-340 binding.
const IDENTITY: Recipe = { ed25519Verify: 1, schnorrVerify: 1 };

export const FLOOR_RECIPES = {
  /** One message in a chain that is already open: the current header key opens it. */
  oneWay: add(ENCRYPT, { gcmOpenHeader: 1 }, DECRYPT_BODY),
  /** The reply to the last message: the current header key fails, the next one opens it, then a DH step. */
  alternating: add(ENCRYPT, { gcmOpenHeaderFail: 1, gcmOpenHeader: 1 }, DH_STEP, DECRYPT_BODY),
  /**
   * Alice: the bundle decoded (its identity, then the two pre-key signatures under the same key),
   * PQXDH (Bob's identity, signed and one-time keys imported; an ephemeral key; four DHs; one
   * encapsulation), her ratchet init (KDF_INIT, a ratchet key, a DH, KDF_RK), the first message.
   * Bob: Alice's identity decoded from the header, PQXDH (her identity and ephemeral keys
   * imported; four DHs; one decapsulation), KDF_INIT, the first message opened under the next
   * header key, its DH step, the body.
   */
  setups: add(
    IDENTITY,
    { ed25519Verify: 2 },
    { x25519Keygen: 1, x25519Dh: 4, mlKemEncapsulate: 1, hkdfPqxdh: 1 },
    { hkdfRoot: 2, x25519Keygen: 1, x25519Dh: 1 },
    ENCRYPT,
    IDENTITY,
    { x25519Dh: 4, mlKemDecapsulate: 1, hkdfPqxdh: 1, hkdfRoot: 1 },
    { gcmOpenHeader: 1 },
    DH_STEP,
    DECRYPT_BODY,
  ),
} as const satisfies Record<string, Recipe>;
export type FloorFigure = keyof typeof FLOOR_RECIPES;

/** Nanoseconds per call of every floor primitive (or those `figure`'s floor calls), each over `seconds`; and the ML-KEM backend that ran. */
export async function measureFloorPrimitives(seconds: number, figure?: FloorFigure): Promise<{ ns: Record<FloorPrimitive, number>; mlKem: string }> {
  // As in a running node after its first ML-KEM operation (the WASM backend loads on first use).
  await loadWasmMlKem();
  const key = randomBytes(32);
  const fresh = (b: Uint8Array) => b.slice();
  const body = randomBytes(AD_BYTES + ENC_HEADER_BYTES + CBC_BYTES);
  const one = new Uint8Array([1]);
  const zeroSalt = new Uint8Array(32);
  const zeroSalt64 = new Uint8Array(64);
  const info = utf8('info');
  const iv = randomBytes(16);
  const plaintext = randomBytes(MESSAGE_BYTES);
  const c = createCipheriv('aes-256-cbc', key, iv);
  const cbc = Buffer.concat([c.update(plaintext), c.final()]);
  const nonce = randomBytes(12);
  const ad = randomBytes(AD_BYTES);
  const header = randomBytes(HEADER_BYTES);
  const g = createCipheriv('aes-256-gcm', key, nonce);
  g.setAAD(ad);
  const sealed = Buffer.concat([g.update(header), g.final()]);
  const tag = g.getAuthTag();
  const otherKey = randomBytes(32);
  const x25519Pair = () => {
    const publicKey = new Uint8Array(32);
    sodium.crypto_scalarmult_base(publicKey, randomBytes(32));
    return publicKey;
  };
  const [xa, xb] = [randomBytes(32), x25519Pair()];
  const dhOut = new Uint8Array(32);
  const edPublic = new Uint8Array(32);
  const edSecret = new Uint8Array(64);
  sodium.crypto_sign_seed_keypair(edPublic, edSecret, randomBytes(32));
  const signed = randomBytes(100);
  const edSig = new Uint8Array(64);
  sodium.crypto_sign_detached(edSig, signed, edSecret);
  const nostr = Secp256k1Schnorr.generate(systemRng);
  const digest = randomBytes(32);
  const schnorrSig = Buffer.from(Secp256k1Schnorr.sign(nostr.privateKey, digest, systemRng));
  const schnorrKey = Buffer.from(nostr.publicKey);
  const kem = MlKem1024.keyPair(systemRng);
  const { ciphertext } = MlKem1024.encapsulate(kem.publicKey, systemRng);

  const ops: Record<FloorPrimitive, () => unknown> = {
    hmacChainStep: () => createHmac('sha256', key).update(one).digest(),
    hmacBody: () => createHmac('sha256', key).update(body).digest(),
    hkdfMessageKeys: () => hkdfSync('sha256', key, zeroSalt, 'info', 80),
    hkdfRoot: () => hkdfSync('sha256', key, key, 'info', 96),
    hkdfPqxdh: () => hkdfSha512(body.subarray(0, PQXDH_IKM_BYTES), zeroSalt64, info, 32),
    cbcEncrypt: () => {
      const e = createCipheriv('aes-256-cbc', key, iv);
      return Buffer.concat([e.update(plaintext), e.final()]);
    },
    cbcDecrypt: () => {
      const d = createDecipheriv('aes-256-cbc', key, iv);
      return Buffer.concat([d.update(cbc), d.final()]);
    },
    gcmSealHeader: () => {
      const e = createCipheriv('aes-256-gcm', key, nonce);
      e.setAAD(ad);
      return Buffer.concat([e.update(header), e.final(), e.getAuthTag()]);
    },
    gcmOpenHeader: () => {
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      d.setAAD(ad);
      d.setAuthTag(tag);
      return Buffer.concat([d.update(sealed), d.final()]);
    },
    gcmOpenHeaderFail: () => {
      const d = createDecipheriv('aes-256-gcm', otherKey, nonce);
      d.setAAD(ad);
      d.setAuthTag(tag);
      d.update(sealed);
      try {
        d.final();
      } catch {
        return null;
      }
      throw new Error('bench: a GCM open under the wrong key succeeded');
    },
    nonce: () => randomFillSync(new Uint8Array(12)),
    x25519Keygen: x25519Pair,
    x25519Dh: () => sodium.crypto_scalarmult(dhOut, xa, xb),
    ed25519Verify: () => {
      if (!sodium.crypto_sign_verify_detached(edSig, signed, edPublic)) throw new Error('bench: Ed25519 floor verify failed');
    },
    schnorrVerify: () => {
      if (!schnorr.verify(digest, schnorrSig, schnorrKey)) throw new Error('bench: BIP-340 floor verify failed');
    },
    mlKemEncapsulate: () => MlKem1024.encapsulate(fresh(kem.publicKey), systemRng),
    mlKemDecapsulate: () => MlKem1024.decapsulate(ciphertext, kem.secretKey),
  };
  const ns = {} as Record<FloorPrimitive, number>;
  const only: Recipe | undefined = figure === undefined ? undefined : FLOOR_RECIPES[figure];
  for (const [name, op] of Object.entries(ops) as [FloorPrimitive, () => unknown][]) if (!only || only[name] !== undefined) ns[name] = await nsPerOp(seconds, () => void op());
  const inUse = mlKemBackendsInUse();
  return { ns, mlKem: `encapsulate ${inUse.encapsulate}, decapsulate ${inUse.decapsulate}` };
}

/** A figure's floor in ops per second, from per-call nanoseconds. */
export function floorPerSec(figure: FloorFigure, ns: Record<FloorPrimitive, number>): number {
  let total = 0;
  for (const [k, n] of Object.entries(FLOOR_RECIPES[figure]) as [FloorPrimitive, number][]) total += n * ns[k];
  return 1e9 / total;
}

/** How many primitive calls a figure's floor counts. */
export function floorCalls(figure: FloorFigure): number {
  return Object.values(FLOOR_RECIPES[figure] as Recipe).reduce((a: number, b) => a + (b ?? 0), 0);
}
