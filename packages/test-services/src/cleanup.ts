/**
 * Last-resort cleanup for test servers a test forgot to stop, run on the
 * process's 'exit' event (normal end, process.exit, uncaught error).
 * Handlers are synchronous: that is all an 'exit' listener can run. Signals
 * are deliberately not intercepted (that would change how the test runner
 * dies); a process killed by a signal is covered by the redis watchdog
 * (see redis.ts), and leaves at most a temp directory behind.
 */
const handlers = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const handler of handlers) {
    try {
      handler();
    } catch {
      // Keep going: one failed cleanup must not leave the other servers running.
    }
  }
  handlers.clear();
}

/** Registers a synchronous cleanup; returns a function that unregisters it. */
export function onProcessExit(handler: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', runAll);
  }
  handlers.add(handler);
  return () => handlers.delete(handler);
}
