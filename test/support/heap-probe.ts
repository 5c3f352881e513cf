/**
 * Loaded into a CLI process with `node --import` (NODE_OPTIONS): on SIGUSR2 it writes the young
 * generation's committed size to stderr, so a test can read how V8 runs in that process.
 */
import { getHeapSpaceStatistics } from 'node:v8';

process.on('SIGUSR2', () => {
  const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size;
  process.stderr.write(`heap-probe ${JSON.stringify({ newSpace })}\n`);
});
