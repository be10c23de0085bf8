import { Presets, SingleBar } from 'cli-progress';
import type { ProgressListener, TransferProgress } from '../context.js';
import type { CliIO } from './io.js';

export interface ProgressBars {
  readonly listener: ProgressListener | undefined;
  stop(): void;
}

/**
 * Progress bars (cli-progress) on a terminal; nothing otherwise (pipes,
 * --json). One bar per transfer subject, replaced when the subject changes.
 * Shows phase, bytes and file or dossier id: never content.
 */
export function progressBars(io: CliIO, json: boolean): ProgressBars {
  if (!io.isTTY || json) return { listener: undefined, stop: () => undefined };
  let bar: SingleBar | undefined;
  let current = '';
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  const listener = (p: TransferProgress): void => {
    const key = `${p.phase}:${p.subject}`;
    if (key !== current) {
      stop();
      current = key;
      bar = new SingleBar(
        {
          format: `${p.phase.padEnd(8)} {bar} {percentage}% | {value}/{total} bytes | ${p.subject}`,
          hideCursor: true,
        },
        Presets.shades_classic,
      );
      bar.start(Math.max(1, p.bytesTotal), 0);
    }
    bar?.update(Math.min(p.bytesDone, Math.max(1, p.bytesTotal)));
  };
  return { listener, stop };
}
