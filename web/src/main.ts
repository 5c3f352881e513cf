import { render } from 'preact';
import { App } from './app.js';
import { readToken, setToken, TOKEN_REFUSED } from './connection.js';
import { html } from './ui.js';

const root = document.getElementById('app')!;
root.textContent = ''; // the boot message: render() would keep it
const token = readToken(location.hash, sessionStorage);
// The token leaves the address bar (and what is bookmarked or shown on screen); sessionStorage keeps it for a reload.
if (location.hash) history.replaceState(null, '', location.pathname);
if (token === null) render(html`<main class="refused"><h1>rrelay</h1><p class="error" role="alert">${TOKEN_REFUSED}</p></main>`, root);
else {
  setToken(token);
  render(html`<${App} token=${token} />`, root);
}
