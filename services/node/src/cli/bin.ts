import { terminateHashWorker } from '@rogatory/protocol/node';
import { processIO } from './io.js';
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2), processIO());
await terminateHashWorker();
process.exitCode = code;
