import { type Bytes, fromUtf8, toHex, utf8 } from '../crypto/index.js';
import { fail } from '../errors.js';
import { fingerprint, type Identity, identitySign, identityVerify, type PublicIdentity } from '../identity/index.js';
import { Reader, Writer } from '../wire/codec.js';

export const GROUP_MEMBERS_VERSION = 1;
const CONTEXT = 'ratchet-relay/group/members/v1';
const MAX_MEMBERS = 256;
const MAX_NAME_BYTES = 128;

/** A group chat's membership as its admin signed it. `version` only grows. */
export interface GroupMembers {
  readonly groupId: string; // 16 random bytes, hex
  readonly name: string;
  readonly version: number;
  readonly admin: string; // fingerprint
  readonly members: readonly string[]; // fingerprints, admin included, sorted
  readonly signature: Bytes;
}

function body(g: Omit<GroupMembers, 'signature'>): Bytes {
  const name = utf8(g.name);
  if (name.length === 0 || name.length > MAX_NAME_BYTES) throw new RangeError(`a group name is 1 to ${MAX_NAME_BYTES} bytes`);
  if (g.members.length > MAX_MEMBERS) throw new RangeError(`a group has at most ${MAX_MEMBERS} members`);
  const w = new Writer(256 + 32 * g.members.length)
    .u8(GROUP_MEMBERS_VERSION)
    .fixed(Buffer.from(g.groupId, 'hex'), 16)
    .bytes(name)
    .u32(g.version)
    .fixed(Buffer.from(g.admin, 'hex'), 32)
    .u16(g.members.length);
  for (const m of g.members) w.fixed(Buffer.from(m, 'hex'), 32);
  return w.finish();
}

export function signGroupMembers(admin: Identity, g: Omit<GroupMembers, 'signature' | 'admin' | 'members'> & { members: readonly string[] }): GroupMembers {
  const unsigned = { ...g, admin: fingerprint(admin.public), members: [...new Set(g.members)].sort() };
  return { ...unsigned, signature: identitySign(admin, CONTEXT, body(unsigned)) };
}

export function encodeGroupMembers(g: GroupMembers): Bytes {
  const b = body(g);
  return new Writer(b.length + 64).fixed(b, b.length).fixed(g.signature, 64).finish();
}

/** The validating decoder: `admin` is the identity the list must be signed by. */
export function decodeGroupMembers(bytes: Bytes, admin: PublicIdentity): GroupMembers {
  const r = new Reader(bytes, 'group members');
  r.version(GROUP_MEMBERS_VERSION);
  const groupId = toHex(r.fixed(16));
  let name: string;
  try {
    name = fromUtf8(r.bytes(MAX_NAME_BYTES));
  } catch (e) {
    if (e instanceof TypeError) return fail('MALFORMED', 'group members: name is not UTF-8');
    throw e;
  }
  const version = r.u32();
  const adminFp = toHex(r.fixed(32));
  const n = r.u16();
  if (n > MAX_MEMBERS) fail('MALFORMED', `group members: ${n} members`);
  const members: string[] = [];
  for (let i = 0; i < n; i++) members.push(toHex(r.fixed(32)));
  const signedLength = bytes.length - 64;
  const signature = r.fixed(64);
  r.end();
  if (adminFp !== fingerprint(admin)) fail('IDENTITY_MISMATCH', 'group members: signed for another admin');
  if (!members.includes(adminFp)) fail('MALFORMED', 'group members: the admin is not a member');
  if (!identityVerify(admin, CONTEXT, bytes.subarray(0, signedLength), signature)) fail('BAD_SIGNATURE', 'group members: the admin signature does not verify');
  return { groupId, name, version, admin: adminFp, members, signature };
}
