#!/usr/bin/env node
// The entry point. A daemon's V8 settings come first: loading the program's modules is what they must precede.
import { applyDaemonRuntime } from './runtime.js';

applyDaemonRuntime(process.argv.slice(2));
await import('./program.js');
