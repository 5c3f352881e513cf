// `node dist/bench/mlkem.js [seconds]`: ML-KEM-1024 per backend alone, so it runs on a Node the rest of the bench cannot (Node 24 here).
import { measureMlKem } from './primitives.js';

const seconds = Number(process.argv[2] ?? 1);
for (const f of await measureMlKem({ seconds })) {
  console.log(`${f.primitive.padEnd(36)} ${f.backend.padEnd(44)} ${(1e6 / f.opsPerSec).toFixed(1).padStart(8)} µs`);
}
