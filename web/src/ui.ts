import htm from 'htm';
import { h, type VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { encode } from 'uqr';
import type { Contact } from './types.js';

export const html = htm.bind(h);

/** Runs a call for one control and keeps its error, in words, to show next to that control. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      return true;
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error };
}

/** A form of one text field and a button: `submit` gets the trimmed text; the field empties once it succeeded. */
export function OneField(props: { label: string; button: string; placeholder?: string; submit: (text: string) => Promise<unknown>; done: () => void }): VNode {
  const [text, setText] = useState('');
  const { run, busy, error } = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    if (await run(() => props.submit(text.trim()))) setText('');
    props.done();
  };
  return html`<form class="panel inline" onSubmit=${submit}>
    <label>${props.label} <input value=${text} placeholder=${props.placeholder} onInput=${(e: Event) => setText((e.target as HTMLInputElement).value)} /></label>
    <button type="submit" disabled=${busy}>${props.button}</button>
    <${Err} error=${error} />
  </form>` as VNode;
}

/** An error from a call, shown where the call was made. */
export const Err = ({ error }: { error: string | null }): VNode | null => (error ? (html`<p class="error" role="alert">${error}</p>` as VNode) : null);

/** A short form of a fingerprint or id: enough to tell them apart on screen. */
export const short = (id: string): string => id.slice(0, 16);

export const contactName = (c: Pick<Contact, 'alias' | 'fingerprint'>): string => c.alias ?? short(c.fingerprint);

/** A name for a fingerprint: the contact's alias if we know it. */
export const nameFor = (contacts: readonly Contact[], fingerprint: string, alias?: string | null): string => {
  const c = contacts.find((x) => x.fingerprint === fingerprint);
  return alias ?? (c ? contactName(c) : short(fingerprint));
};

export const when = (ms: number | null): string => {
  if (ms === null) return 'never';
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
};

/**
 * A QR code as an SVG of Preact elements (no innerHTML): one path, a unit square per dark module,
 * inside the standard's 4-module quiet zone. Byte mode, lowest correction, as the CLI's (src/cli/qr.ts).
 */
export function Qr({ text, label, small = false }: { text: string; label: string; small?: boolean }): VNode {
  const { d, size } = useMemo(() => {
    const { data } = encode(text, { ecc: 'L', border: 4 });
    const parts: string[] = [];
    data.forEach((row, y) => row.forEach((dark, x) => dark && parts.push(`M${x} ${y}h1v1h-1z`)));
    return { d: parts.join(''), size: data.length };
  }, [text]);
  return html`<svg class=${small ? 'qr small' : 'qr'} role="img" aria-label=${label} viewBox=${`0 0 ${size} ${size}`} shape-rendering="crispEdges">
    <rect class="qr-light" width=${size} height=${size} />
    <path class="qr-dark" d=${d} />
  </svg>` as VNode;
}
