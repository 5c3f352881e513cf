import { fail } from '../errors.js';
import { formatSafetyNumber, type PublicIdentity, safetyNumber } from '../identity/index.js';
import { nicknameKey } from '../kx/index.js';
import { type Contact, ContactsStore, type IdentityObservation, type Met } from '../store/index.js';
import type { NodeContext } from './context.js';

export type ContactWithSafetyNumber = Contact & { readonly safetyNumber: string };

/** How a contact is named to the user: its alias, else the start of its fingerprint. */
export function nameOf(c: Pick<Contact, 'alias' | 'fingerprint'>): string {
  return c.alias ?? c.fingerprint.slice(0, 16);
}

/**
 * Contacts: who we know, under which identity, and how far we trust them. A Nostr key that starts
 * speaking for another identity is a loud warning, never a second contact.
 */
export class Contacts {
  private readonly store: ContactsStore;

  constructor(private readonly ctx: NodeContext) {
    this.store = new ContactsStore(ctx.db);
  }

  get(fingerprint: string): Contact | undefined {
    return this.store.get(fingerprint);
  }

  byNostr(pubkey: string): Contact | undefined {
    return this.store.byNostr(pubkey);
  }

  /** The contact whose reset requests arrive at `rv`, our mailbox for it. */
  byResetRv(rv: string): Contact | undefined {
    return this.store.byResetRv(rv);
  }

  /** Our reset mailboxes, one per contact met by a key exchange. */
  resetRvs(): string[] {
    return this.store.resetRvs();
  }

  /** A contact by alias, fingerprint or unique prefix, if there is one. */
  resolve(ref: string): Contact | undefined {
    return this.store.resolve(ref);
  }

  all(): Contact[] {
    return this.store.all();
  }

  /** A contact by alias, fingerprint or unique prefix; fails with the fix when there is none. */
  contact(ref: string): Contact {
    return this.store.resolve(ref) ?? fail('NOT_FOUND', `no contact matches "${ref}": see \`rrelay contacts ls\``);
  }

  list(): ContactWithSafetyNumber[] {
    return this.store.all().map((c) => this.withSafetyNumber(c));
  }

  /** 5,200 SHA-512 rounds a side: computed for the contacts asked about only. */
  withSafetyNumber(c: Contact): ContactWithSafetyNumber {
    return { ...c, safetyNumber: formatSafetyNumber(safetyNumber(this.ctx.self(), c.identity)) };
  }

  setAlias(ref: string, alias: string | null): ContactWithSafetyNumber {
    if (alias !== null && (/^[0-9a-f]{8,64}$/i.test(alias) || alias.trim() !== alias || alias.length === 0 || alias.length > 64))
      fail('INVALID_ARGUMENT', 'an alias is 1 to 64 characters, no surrounding spaces, and must not look like a fingerprint');
    const c = this.contact(ref);
    this.store.setAlias(c.fingerprint, alias, this.ctx.clock());
    return this.withSafetyNumber(this.store.get(c.fingerprint)!);
  }

  setVerified(ref: string, verified: boolean): ContactWithSafetyNumber {
    const c = this.contact(ref);
    this.store.setVerified(c.fingerprint, verified, this.ctx.clock());
    return this.withSafetyNumber(this.store.get(c.fingerprint)!);
  }

  /** Also acknowledges a changed identity key. */
  setTrusted(ref: string, trusted: boolean): ContactWithSafetyNumber {
    const c = this.contact(ref);
    this.store.setTrusted(c.fingerprint, trusted, this.ctx.clock());
    return this.withSafetyNumber(this.store.get(c.fingerprint)!);
  }

  /** The user chose to write to `identity` (a discovered peer, through its bundle): a contact, trusted from the start. */
  addChosen(identity: PublicIdentity): Contact {
    return this.store.add(identity, { how: 'bundle' }, true, this.ctx.clock());
  }

  /**
   * A key exchange completed with `identity`, and keeps both reset mailboxes. `met`: how it started,
   * null for a ratchet reset (which changes neither trust nor how we met). An invite went out of
   * band, to someone chosen: trusted from the start. A mediator (or group admin) chose for us: never
   * trusted. The first key exchange with a contact records how we met. Call inside a transaction.
   */
  addFromKeyExchange(identity: PublicIdentity, resetRv: string, peerResetRv: string, met: Met | null, now: number): Contact {
    const contact = this.store.add(identity, met ?? { how: 'invite' }, met?.how === 'invite', now);
    // Met through a bundle first: the bundle carried the compact identity; keep the KEM key the exchange brought.
    if (!contact.identity.kemKey) this.store.setFullIdentity(identity, now);
    if (met?.how === 'invite') this.store.setTrusted(contact.fingerprint, true, now);
    if (met && contact.resetRv === null) this.store.setMet(contact.fingerprint, met, now);
    this.store.setResetRvs(contact.fingerprint, resetRv, peerResetRv, now);
    return this.store.get(contact.fingerprint)!;
  }

  /**
   * A contact just met by a key exchange, named by the nickname it chose (validated by the decoder:
   * never hex, so never taken for a fingerprint or a prefix) unless the user named it already. A name
   * that looks like another contact's alias (`nicknameKey`: case, width and joiners aside) gets the
   * first free suffix, `nick-2`, `nick-3`, …: a peer can never take, or pass for, another contact's
   * name. Call inside a transaction.
   */
  nameByNickname(contact: Contact, nickname: string, now: number): Contact {
    if (contact.alias !== null) return contact;
    const taken = new Set(this.store.all().flatMap((c) => (c.alias === null ? [] : [nicknameKey(c.alias)])));
    let alias = nickname;
    for (let n = 2; taken.has(nicknameKey(alias)); n++) alias = `${nickname}-${n}`;
    this.store.setAlias(contact.fingerprint, alias, now);
    return this.store.get(contact.fingerprint)!;
  }

  /** Records that `identity` spoke or published; a changed key warns once the transaction commits. */
  observe(identity: PublicIdentity, source: 'message' | 'bundle', now: number): IdentityObservation {
    const observed = this.store.observe(identity, source, now);
    if (observed.kind === 'key-changed') {
      const { contact, previous } = observed;
      this.ctx.afterCommit(() => this.warnKeyChanged(contact, previous));
    }
    return observed;
  }

  /** Sending to a contact whose key changed waits until the user acknowledges it. */
  assertSendable(contact: Contact): void {
    if (contact.keyChangedAt !== null)
      fail(
        'IDENTITY_MISMATCH',
        `the identity key of ${nameOf(contact)} changed: compare safety numbers, then run \`rrelay contacts verify ${contact.alias ?? contact.fingerprint}\` or \`rrelay contacts trust ...\``,
      );
  }

  /**
   * Introductions seal an invite to the contact's identity KEM key, which only a key exchange
   * carries: a contact met through a bundle cannot take part, and is refused at once.
   */
  assertMetByInvite(contact: Contact, refused: string): void {
    if (!contact.identity.kemKey) fail('INVALID_ARGUMENT', `${nameOf(contact)} was met through a bundle: ${refused}; meet them by invite first (\`rrelay invite create\`)`);
  }

  private warnKeyChanged(contact: Contact, previous: string): void {
    const message = `WARNING: the identity key of ${nameOf(contact)} changed (was ${previous.slice(0, 16)}…, now ${contact.fingerprint.slice(0, 16)}…). Compare safety numbers before you trust it.`;
    this.ctx.log(message);
    this.ctx.events.emit('warning', { kind: 'identity-changed', contact: contact.fingerprint, alias: contact.alias, previous, message });
  }
}
