import { render } from 'preact';
import { App } from './app.js';
import { readToken, setToken, TOKEN_REFUSED } from './connection.js';
import { html } from './ui.js';

const root = document.getElementById('app')!;
root.textContent = ''; // the boot message: render() would keep it
const token = readToken(location.hash, sessionStorage);
if (token === null) render(html`<main class="refused"><h1>rrelay</h1><p class="error" role="alert">${TOKEN_REFUSED}</p></main>`, root);
else {
  setToken(token);
  render(html`<${App} token=${token} />`, root);
}
