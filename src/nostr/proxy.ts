import { fail } from '../errors.js';

/**
 * A SOCKS5 proxy for relay connections (Tor, say): `socks5h://host:port` resolves relay names at the
 * proxy, `socks5://host:port` here (the DNS query then leaves this machine directly). Anything else
 * is refused, so that a typo can never mean a direct connection. Returns the URL normalised.
 */
export function validateProxyUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('INVALID_ARGUMENT', `"${url}" is not a proxy URL: use socks5h://host:port (Tor: socks5h://127.0.0.1:9050)`);
  }
  if (u.protocol !== 'socks5h:' && u.protocol !== 'socks5:')
    fail('INVALID_ARGUMENT', `"${url}": only SOCKS5 proxies are supported, as socks5h://host:port (or socks5://host:port to resolve names locally)`);
  if (!u.hostname || !u.port) fail('INVALID_ARGUMENT', `"${url}": a proxy URL needs a host and a port, as socks5h://127.0.0.1:9050`);
  if (u.username || u.password)
    fail('INVALID_ARGUMENT', `"${url}": no credentials in the proxy URL: every connection uses its own random ones, so that Tor keeps them on separate circuits`);
  if ((u.pathname !== '' && u.pathname !== '/') || u.search || u.hash) fail('INVALID_ARGUMENT', `"${url}": a proxy URL is socks5h://host:port, with nothing after the port`);
  return `${u.protocol}//${u.host}`;
}
