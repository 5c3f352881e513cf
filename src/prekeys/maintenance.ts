import { type KeyPair, type Rng } from '../crypto/index.js';
import { fail } from '../errors.js';
import type { Identity } from '../identity/index.js';
import { PREKEY_DEFAULTS, type PreKeyConfig } from '../limits.js';
import type { PreKeyBundle } from './bundle.js';
import {
  generateKyberPreKey,
  generateOneTimePreKey,
  generateSignedPreKey,
  type KyberPreKey,
  type OneTimePreKey,
  type RotatingPreKey,
  type SignedPreKey,
} from './records.js';

/** Which keys the last published bundle carried: the "bundle metadata" of the seed. */
export interface PublishedBundle {
  readonly signedPreKeyId: number;
  readonly kyberPreKeyId: number;
  readonly oneTimePreKeyIds: readonly number[];
  readonly publishedAt: number;
}

/** All pre-key material of one identity. `oneTime` holds unconsumed keys only; the store keeps the tombstones. */
export interface PreKeyState {
  readonly signed: readonly SignedPreKey[];
  readonly kyber: readonly KyberPreKey[];
  readonly oneTime: readonly OneTimePreKey[];
  readonly nextIds: { readonly signed: number; readonly kyber: number; readonly oneTime: number };
  readonly published: PublishedBundle | null;
}

export const EMPTY_PREKEY_STATE: PreKeyState = {
  signed: [],
  kyber: [],
  oneTime: [],
  nextIds: { signed: 1, kyber: 1, oneTime: 1 },
  published: null,
};

export interface MaintenanceReport {
  readonly rotatedSignedPreKey: boolean;
  readonly rotatedKyberPreKey: boolean;
  readonly addedOneTimePreKeys: number;
  readonly expiredSignedPreKeyIds: readonly number[];
  readonly expiredKyberPreKeyIds: readonly number[];
  /** True when the bundle that would be published now differs from the last published one. */
  readonly shouldPublish: boolean;
}

export function preKeyConfig(overrides?: Partial<PreKeyConfig>): PreKeyConfig {
  return { ...PREKEY_DEFAULTS, ...overrides };
}

function current(keys: readonly RotatingPreKey[]): RotatingPreKey | undefined {
  let best: RotatingPreKey | undefined;
  for (const k of keys) if (k.replacedAt === null && (!best || k.id > best.id)) best = k;
  return best;
}

/** Rotates one kind of medium-term key: replace when due, and end the grace period of replaced ones. */
function rotate(
  keys: readonly RotatingPreKey[],
  now: number,
  rotationMs: number,
  graceMs: number,
  make: () => RotatingPreKey,
): { keys: RotatingPreKey[]; rotated: boolean; expired: number[] } {
  const cur = current(keys);
  const rotated = !cur || now - cur.createdAt >= rotationMs;
  let next = keys.map((k) => (rotated && k === cur ? { ...k, replacedAt: now } : k));
  if (rotated) next = [...next, make()];
  const expired: number[] = [];
  next = next.map((k) => {
    if (k.replacedAt !== null && k.privateKey !== null && now - k.replacedAt > graceMs) {
      expired.push(k.id);
      return { ...k, privateKey: null };
    }
    return k;
  });
  return { keys: next, rotated, expired };
}

/**
 * The seed's key maintenance, as a pure transition: rotate the signed and Kyber pre-keys when they
 * are due, independently; retire replaced keys after their grace period; refill the one-time pool.
 */
export function maintain(
  state: PreKeyState,
  identity: Identity,
  now: number,
  rng: Rng,
  overrides?: Partial<PreKeyConfig>,
): { state: PreKeyState; report: MaintenanceReport } {
  const config = preKeyConfig(overrides);
  const nextIds = { ...state.nextIds };
  const signed = rotate(
    state.signed,
    now,
    config.signedPreKeyRotationMs,
    config.replacedKeyGraceMs,
    () => generateSignedPreKey(identity, nextIds.signed++, now, rng),
  );
  const kyber = rotate(
    state.kyber,
    now,
    config.kyberPreKeyRotationMs,
    config.replacedKeyGraceMs,
    () => generateKyberPreKey(identity, nextIds.kyber++, now, rng),
  );
  let oneTime = state.oneTime;
  let added = 0;
  if (oneTime.length < config.oneTimePoolLowWater) {
    const fresh: OneTimePreKey[] = [];
    for (let i = oneTime.length; i < config.oneTimePoolTarget; i++) fresh.push(generateOneTimePreKey(nextIds.oneTime++, now, rng));
    oneTime = [...oneTime, ...fresh];
    added = fresh.length;
  }
  const next: PreKeyState = { signed: signed.keys, kyber: kyber.keys, oneTime, nextIds, published: state.published };
  return {
    state: next,
    report: {
      rotatedSignedPreKey: signed.rotated,
      rotatedKyberPreKey: kyber.rotated,
      addedOneTimePreKeys: added,
      expiredSignedPreKeyIds: signed.expired,
      expiredKyberPreKeyIds: kyber.expired,
      shouldPublish: !samePublished(next.published, bundleContents(next, config)),
    },
  };
}

function bundleContents(state: PreKeyState, config: PreKeyConfig): Omit<PublishedBundle, 'publishedAt'> | null {
  const spk = current(state.signed);
  const kpk = current(state.kyber);
  if (!spk || !kpk) return null;
  return {
    signedPreKeyId: spk.id,
    kyberPreKeyId: kpk.id,
    oneTimePreKeyIds: oneTimeForBundle(state, config).map((k) => k.id),
  };
}

function oneTimeForBundle(state: PreKeyState, config: PreKeyConfig): readonly OneTimePreKey[] {
  return [...state.oneTime].sort((a, b) => a.id - b.id).slice(0, config.oneTimeKeysPerBundle);
}

function samePublished(a: PublishedBundle | null, b: Omit<PublishedBundle, 'publishedAt'> | null): boolean {
  if (!a || !b) return a === b;
  return (
    a.signedPreKeyId === b.signedPreKeyId &&
    a.kyberPreKeyId === b.kyberPreKeyId &&
    a.oneTimePreKeyIds.length === b.oneTimePreKeyIds.length &&
    a.oneTimePreKeyIds.every((id, i) => id === b.oneTimePreKeyIds[i])
  );
}

/** The bundle to publish: always the newest signed and Kyber pre-keys, and the oldest unused one-time keys. */
export function currentBundle(state: PreKeyState, identity: Identity, overrides?: Partial<PreKeyConfig>): PreKeyBundle {
  const config = preKeyConfig(overrides);
  const spk = current(state.signed);
  const kpk = current(state.kyber);
  if (!spk || !kpk) return fail('INVALID_ARGUMENT', 'no pre-keys yet: run maintenance first');
  return {
    identity: identity.public,
    signedPreKey: { id: spk.id, publicKey: spk.publicKey, createdAt: spk.createdAt, signature: spk.signature },
    kyberPreKey: { id: kpk.id, publicKey: kpk.publicKey, createdAt: kpk.createdAt, signature: kpk.signature },
    oneTimePreKeys: oneTimeForBundle(state, config).map((k) => ({ id: k.id, publicKey: k.publicKey })),
  };
}

/** Bundle metadata tracking: record what went out, so an identical bundle is never published twice. */
export function markPublished(state: PreKeyState, bundle: PreKeyBundle, now: number): PreKeyState {
  return {
    ...state,
    published: {
      signedPreKeyId: bundle.signedPreKey.id,
      kyberPreKeyId: bundle.kyberPreKey.id,
      oneTimePreKeyIds: bundle.oneTimePreKeys.map((k) => k.id),
      publishedAt: now,
    },
  };
}

/**
 * The private half of a signed or Kyber pre-key named by an initial message. A replaced key works
 * until its grace period, counted from its replacement, ends.
 */
export function rotatingPreKeyForUse(
  kind: 'signed' | 'Kyber',
  k: RotatingPreKey | undefined,
  id: number,
  now: number,
  overrides?: Partial<PreKeyConfig>,
): KeyPair {
  if (!k) return fail('UNKNOWN_PREKEY', `${kind} pre-key ${id} is unknown`);
  const graceOver = k.replacedAt !== null && now - k.replacedAt > preKeyConfig(overrides).replacedKeyGraceMs;
  if (k.privateKey === null || graceOver)
    return fail('PREKEY_EXPIRED', `${kind} pre-key ${id} was replaced ${new Date(k.replacedAt!).toISOString()} and its grace period is over`);
  return { publicKey: k.publicKey, privateKey: k.privateKey };
}

export function oneTimePreKeyForUse(k: OneTimePreKey | undefined, id: number): KeyPair {
  if (!k) return fail('UNKNOWN_PREKEY', `one-time pre-key ${id} is unknown`);
  if (k.consumedAt !== null || k.privateKey === null)
    return fail('ONE_TIME_PREKEY_USED', `one-time pre-key ${id} was already used by another session`);
  return { publicKey: k.publicKey, privateKey: k.privateKey };
}
