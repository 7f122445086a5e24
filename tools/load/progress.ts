/** Live progress on the terminal: one line per interval, rewritten in place on a TTY. */
import type { Progress } from './types.js';

const rate = (n: number): string => (n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10));
const msText = (n: number): string => (n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10));

/** `phase 2/4 steady  12.0s  offered 200/s  achieved 198/s  errors 3  in-flight 14  p99 41 ms` */
export function formatProgress(p: Progress, phaseCount: number): string {
  return [
    `phase ${p.phaseIndex + 1}/${phaseCount} ${p.phase}`,
    `${(p.elapsedMs / 1000).toFixed(1)}s`,
    `offered ${rate(p.offeredRate)}/s`,
    `achieved ${rate(p.achievedRate)}/s`,
    `errors ${p.errors}`,
    `in-flight ${p.inFlight}`,
    `p99 ${msText(p.p99Ms)} ms`,
  ].join('  ');
}

export interface ProgressWriter {
  write(p: Progress): void;
  /** Ends the display (a final newline after an in-place line). */
  end(): void;
}

/** Writes to `stream` (stderr by default): `\r` + clear line on a TTY, else one plain line per call. */
export function terminalProgress(phaseCount: number, stream: NodeJS.WriteStream = process.stderr): ProgressWriter {
  const tty = stream.isTTY === true;
  let pending = false;
  return {
    write(p) {
      const line = formatProgress(p, phaseCount);
      if (tty) {
        stream.write(`\r\x1b[2K${line}`);
        pending = true;
      } else {
        stream.write(`${line}\n`);
      }
    },
    end() {
      if (pending) stream.write('\n');
      pending = false;
    },
  };
}
