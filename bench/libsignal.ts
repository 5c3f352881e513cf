// Reference figures from libsignal-client (Rust core behind a Node bridge) for comparison with our own
// PQXDH + Double Ratchet. Every message is really decrypted and checked, so failures cannot pass as speed.
import { randomFillSync, randomInt, randomUUID } from 'node:crypto';
import {
  CiphertextMessageType,
  type Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PrivateKey,
  ProtocolAddress,
  PublicKey,
  SessionRecord,
  SignalMessage,
  SignedPreKeyRecord,
  processPreKeyBundle,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import { now, nsPerOp, timedRegionPerSec } from './timing.js';

export interface LibsignalFigures {
  /** 1 KB messages per second, encrypt + decrypt, always Alice -> Bob */
  msgsPerSecOneWay: number;
  /** 1 KB messages per second, encrypt + decrypt, alternating Alice -> Bob, Bob -> Alice (a DH ratchet step each time) */
  msgsPerSecAlternating: number;
  /** full session setups per second: Bob's PreKeyBundle (already generated) -> Alice processPreKeyBundle -> Alice encrypts 1 KB -> Bob decrypts the PreKeySignalMessage (signalDecryptPreKey) */
  setupsPerSec: number;
  /** milliseconds to generate one complete bundle's key material: a signed pre-key (X25519 + signature), a Kyber pre-key (KEMKeyPair Kyber1024 + signature), and one one-time pre-key */
  bundleGenerationMs: number;
  /** milliseconds to serialize the bundle's public parts (the libsignal PreKeyBundle has no serialize(); serialize the public keys and signatures it consists of: identity key, signed pre-key public+signature, kyber pre-key public+signature, one-time pre-key public, ids) */
  bundleSerializationMs: number;
  /** bytes of that serialization (identity key + SPK + sig + Kyber pk + sig + one OTK + ids) */
  bundleBytes: number;
}

const MESSAGE_BYTES = 1024;
const DEVICE_ID = 1;

/**
 * One party's in-memory state. The package ships no in-memory stores, and the bridge only calls methods by
 * name, so one class can stand in structurally for all five store types.
 */
class Party extends IdentityKeyStore {
  readonly identity = IdentityKeyPair.generate();
  readonly registrationId = randomInt(1, 16381);
  readonly address = ProtocolAddress.new(randomUUID(), DEVICE_ID);
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly identities = new Map<string, PublicKey>();
  protected readonly preKeys = new Map<number, PreKeyRecord>();
  protected readonly signedPreKeys = new Map<number, SignedPreKeyRecord>();
  protected readonly kyberPreKeys = new Map<number, KyberPreKeyRecord>();

  async getIdentityKey(): Promise<PrivateKey> {
    return this.identity.privateKey;
  }
  // The base class re-derives the public key from the private key on every call; a real client keeps the pair.
  override async getIdentityKeyPair(): Promise<IdentityKeyPair> {
    return this.identity;
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.registrationId;
  }
  async saveIdentity(name: ProtocolAddress, key: PublicKey): Promise<IdentityChange> {
    const known = this.identities.get(name.toString());
    this.identities.set(name.toString(), key);
    return known && !known.equals(key) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(name: ProtocolAddress, key: PublicKey, _direction: Direction): Promise<boolean> {
    const known = this.identities.get(name.toString());
    return !known || known.equals(key);
  }
  async getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    return this.identities.get(name.toString()) ?? null;
  }

  async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.sessions.set(name.toString(), record);
  }
  async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    return this.sessions.get(name.toString()) ?? null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return addresses.map((a) => this.sessions.get(a.toString()) ?? fail(`no session for ${a.toString()}`));
  }

  async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    this.preKeys.set(id, record);
  }
  async getPreKey(id: number): Promise<PreKeyRecord> {
    return this.preKeys.get(id) ?? fail(`no pre-key ${id}`);
  }
  async removePreKey(id: number): Promise<void> {
    this.preKeys.delete(id);
  }

  async saveSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    this.signedPreKeys.set(id, record);
  }
  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    return this.signedPreKeys.get(id) ?? fail(`no signed pre-key ${id}`);
  }

  async saveKyberPreKey(id: number, record: KyberPreKeyRecord): Promise<void> {
    this.kyberPreKeys.set(id, record);
  }
  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    return this.kyberPreKeys.get(id) ?? fail(`no Kyber pre-key ${id}`);
  }
  // Only one-time Kyber keys are handed out here, so using one consumes it.
  async markKyberPreKeyUsed(id: number, _signedPreKeyId: number, _baseKey: PublicKey): Promise<void> {
    this.kyberPreKeys.delete(id);
  }

  /** Keeps the per-setup benchmark's memory flat: each setup uses a peer that is never seen again. */
  forget(peer: ProtocolAddress): void {
    this.sessions.delete(peer.toString());
    this.identities.delete(peer.toString());
  }
}

function fail(message: string): never {
  throw new Error(`libsignal bench: ${message}`);
}

/** Bob's pre-keys: one signed pre-key for his lifetime, plus fresh one-time EC and Kyber keys per bundle. */
class Bob extends Party {
  private readonly signedPreKey: SignedPreKeyRecord;
  private nextId = 1;

  constructor() {
    super();
    const spk = PrivateKey.generate();
    const spkPublic = spk.getPublicKey();
    const signature = this.identity.privateKey.sign(spkPublic.serialize());
    this.signedPreKey = SignedPreKeyRecord.new(1, Date.now(), spkPublic, spk, signature);
    this.signedPreKeys.set(1, this.signedPreKey);
  }

  freshBundle(): PreKeyBundle {
    const id = this.nextId++;
    const otk = PrivateKey.generate();
    const otkRecord = PreKeyRecord.new(id, otk.getPublicKey(), otk);
    const kem = KEMKeyPair.generate();
    const kemSignature = this.identity.privateKey.sign(kem.getPublicKey().serialize());
    const kyberRecord = KyberPreKeyRecord.new(id, Date.now(), kem, kemSignature);
    this.preKeys.set(id, otkRecord);
    this.kyberPreKeys.set(id, kyberRecord);
    return PreKeyBundle.new(
      this.registrationId,
      DEVICE_ID,
      id,
      otkRecord.publicKey(),
      this.signedPreKey.id(),
      this.signedPreKey.publicKey(),
      this.signedPreKey.signature(),
      this.identity.publicKey,
      id,
      kyberRecord.publicKey(),
      kyberRecord.signature(),
    );
  }
}

/** Encrypts message number `i` from `from` to `to`, decrypts it, and throws unless the plaintext survived. */
async function send(from: Party, to: Party, plaintext: Uint8Array<ArrayBuffer>, i: number): Promise<void> {
  plaintext[0] = i & 0xff;
  plaintext[MESSAGE_BYTES - 1] = (i >>> 8) & 0xff;
  const ciphertext = await signalEncrypt(plaintext, to.address, from.address, from, from);
  const wire = ciphertext.serialize();
  const received =
    ciphertext.type() === CiphertextMessageType.PreKey
      ? await signalDecryptPreKey(PreKeySignalMessage.deserialize(wire), from.address, to.address, to, to, to, to, to)
      : await signalDecrypt(SignalMessage.deserialize(wire), from.address, to.address, to, to);
  if (
    received.length !== MESSAGE_BYTES ||
    received[0] !== plaintext[0] ||
    received[MESSAGE_BYTES - 1] !== plaintext[MESSAGE_BYTES - 1]
  )
    fail(`message ${i} from ${from.address.toString()} decrypted to the wrong plaintext`);
}

/** A session past its pre-key phase: until Alice hears from Bob she keeps sending PreKeySignalMessages. */
async function establishedPair(plaintext: Uint8Array<ArrayBuffer>): Promise<{ alice: Party; bob: Bob }> {
  const alice = new Party();
  const bob = new Bob();
  await processPreKeyBundle(bob.freshBundle(), bob.address, alice.address, alice, alice);
  await send(alice, bob, plaintext, 0);
  await send(bob, alice, plaintext, 0);
  return { alice, bob };
}

/** Setups per second; only the handshake itself is timed, not preparing fresh parties and pre-keys. */
async function setupsPerSec(seconds: number, plaintext: Uint8Array<ArrayBuffer>): Promise<number> {
  const bob = new Bob();
  const setup = async (i: number): Promise<bigint> => {
    const alice = new Party();
    const bundle = bob.freshBundle();
    plaintext[0] = i & 0xff;
    plaintext[MESSAGE_BYTES - 1] = (i >>> 8) & 0xff;
    // Timed region: processPreKeyBundle + signalEncrypt + signalDecryptPreKey (plus the wire round trip).
    const start = now();
    await processPreKeyBundle(bundle, bob.address, alice.address, alice, alice);
    const ciphertext = await signalEncrypt(plaintext, bob.address, alice.address, alice, alice);
    if (ciphertext.type() !== CiphertextMessageType.PreKey) fail(`setup ${i} did not produce a PreKeySignalMessage`);
    const message = PreKeySignalMessage.deserialize(ciphertext.serialize());
    const received = await signalDecryptPreKey(message, alice.address, bob.address, bob, bob, bob, bob, bob);
    const elapsed = now() - start;
    if (
      received.length !== MESSAGE_BYTES ||
      received[0] !== plaintext[0] ||
      received[MESSAGE_BYTES - 1] !== plaintext[MESSAGE_BYTES - 1]
    )
      fail(`setup ${i} decrypted to the wrong plaintext`);
    bob.forget(alice.address);
    return elapsed;
  };

  return timedRegionPerSec(seconds, setup);
}

/** The bundle's public parts in a fixed layout; the u32 ids match the width our own bundle encoding uses. */
function serializeBundle(b: PreKeyBundle): Uint8Array<ArrayBuffer> {
  const otk = b.preKeyPublic() ?? fail('bundle has no one-time pre-key');
  const otkId = b.preKeyId() ?? fail('bundle has no one-time pre-key id');
  const keys = [
    b.identityKey().serialize(),
    b.signedPreKeyPublic().serialize(),
    b.signedPreKeySignature(),
    b.kyberPreKeyPublic().serialize(),
    b.kyberPreKeySignature(),
    otk.serialize(),
  ];
  const idBytes = 4 * 4 + 1;
  const out = new Uint8Array(keys.reduce((n, k) => n + k.length, idBytes));
  const ids = new DataView(out.buffer);
  ids.setUint32(0, b.registrationId());
  ids.setUint8(4, b.deviceId());
  ids.setUint32(5, b.signedPreKeyId());
  ids.setUint32(9, b.kyberPreKeyId());
  ids.setUint32(13, otkId);
  let offset = idBytes;
  for (const k of keys) {
    out.set(k, offset);
    offset += k.length;
  }
  return out;
}

export const LIBSIGNAL_FIGURES = ['oneWay', 'alternating', 'setups', 'bundle'] as const;
export type LibsignalFigure = (typeof LIBSIGNAL_FIGURES)[number];
export type LibsignalBundleFigures = Pick<LibsignalFigures, 'bundleGenerationMs' | 'bundleSerializationMs' | 'bundleBytes'>;

/** One figure: ops per second (messages or setups), or the bundle figures. */
export async function measureLibsignalFigure(figure: LibsignalFigure, seconds: number): Promise<number | LibsignalBundleFigures> {
  const plaintext = randomFillSync(new Uint8Array(MESSAGE_BYTES));
  switch (figure) {
    case 'oneWay': {
      const oneWay = await establishedPair(plaintext);
      return 1e9 / (await nsPerOp(seconds, (i) => send(oneWay.alice, oneWay.bob, plaintext, i)));
    }
    case 'alternating': {
      const pingPong = await establishedPair(plaintext);
      return (
        1e9 /
        (await nsPerOp(seconds, (i) => (i % 2 === 0 ? send(pingPong.alice, pingPong.bob, plaintext, i) : send(pingPong.bob, pingPong.alice, plaintext, i))))
      );
    }
    case 'setups':
      return setupsPerSec(seconds, plaintext);
    case 'bundle': {
      const identity = IdentityKeyPair.generate().privateKey;
      const generationNs = await nsPerOp(seconds, () => {
        const spk = PrivateKey.generate();
        identity.sign(spk.getPublicKey().serialize());
        const kem = KEMKeyPair.generate();
        identity.sign(kem.getPublicKey().serialize());
        PrivateKey.generate().getPublicKey();
      });
      const bundle = new Bob().freshBundle();
      const bundleBytes = serializeBundle(bundle).length;
      const serializationNs = await nsPerOp(seconds, () => {
        if (serializeBundle(bundle).length !== bundleBytes) fail('bundle serialization changed size');
      });
      return { bundleGenerationMs: generationNs / 1e6, bundleSerializationMs: serializationNs / 1e6, bundleBytes };
    }
  }
}

/** libsignal-client's version; its ML-KEM is the Rust core's own (no backend to choose). */
export async function libsignalVersion(): Promise<string> {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  return (require('@signalapp/libsignal-client/package.json') as { version: string }).version;
}
