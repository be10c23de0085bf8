/**
 * Child process of log.test.ts's crash test: appends batches to the log at
 * argv[2] and prints the size after each commit, until killed (at most 200
 * batches).
 */
import { ready, sha256, toHex, utf8 } from '@rogatory/protocol';
import { TransparencyLog } from '../src/index.js';

await ready();
const log = TransparencyLog.open({ path: process.argv[2]!, network: 'wacap' });
const batch = Number(process.argv[3] ?? 2000);
for (let b = 0; b < 200; b++) {
  const first = log.size;
  const entries = Array.from({ length: batch }, (_, i) => ({
    type: 'log-entry' as const,
    network: 'wacap',
    kind: 'manifest' as const,
    hash: toHex(sha256(utf8(`entry-${first + i}`))),
  }));
  const { size } = log.append(entries);
  process.stdout.write(`${size}\n`);
}
log.close();
