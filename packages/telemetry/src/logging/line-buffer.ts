/**
 * Collects log lines into chunks of at least `minLength` characters before
 * handing them to the file stream (sonic-boom), one write per chunk.
 *
 * Why not sonic-boom's own `minLength`: it appends each line to one growing
 * string and measures that string's byte length on every write, which
 * flattens it — a copy of up to 16 KiB per line while a write is in flight
 * (measured under load: ~5 µs per access line, more than the rest of the
 * line). Here a line is pushed onto an array and the chunk is joined once.
 * The stream still bounds what waits for the disk (`maxLength`), and the
 * chunk in hand is flushed with it on exit (pino registers the stream's
 * `flushSync`), by `logger.flush()`, and at the latest `maxDelayMs` after its
 * first line (an unref'd timer, one per chunk), so a quiet service's lines do
 * not wait for the chunk to fill.
 *
 * Chunks of 32 KiB rather than 4 KiB: each write hands the chunk to libuv's
 * thread pool, and waking a pool thread costs more than the write to a page
 * cache (measured: 1.75 µs per access line with 4 KiB chunks, 1.33 µs with
 * 32 KiB).
 */
import type { DestinationStream } from 'pino';

interface FileStream extends DestinationStream {
  flush(callback?: (error?: Error) => void): void;
  flushSync(): void;
  end(): void;
  on(event: string, listener: (...args: any[]) => void): unknown; // eslint-disable-line @typescript-eslint/no-explicit-any -- an EventEmitter listener
}

export class LineBuffer implements DestinationStream {
  private lines: string[] = [];
  private length = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: FileStream,
    private readonly minLength: number,
    private readonly maxDelayMs = 1000,
  ) {
    // pino flushes the stream synchronously on exit: take the lines in hand along.
    const flushSync = stream.flushSync.bind(stream);
    stream.flushSync = () => {
      this.drain();
      flushSync();
    };
  }

  write(line: string): void {
    this.lines.push(line);
    this.length += line.length;
    if (this.length >= this.minLength) this.drain();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.drain(), this.maxDelayMs).unref();
  }

  /** Hands the lines in hand to the stream. */
  drain(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const lines = this.lines;
    if (lines.length === 0) return;
    this.lines = [];
    this.length = 0;
    this.stream.write(lines.length === 1 ? lines[0]! : lines.join(''));
  }

  flush(callback?: (error?: Error) => void): void {
    this.drain();
    this.stream.flush(callback);
  }

  flushSync(): void {
    this.stream.flushSync();
  }

  end(): void {
    this.drain();
    this.stream.end();
  }

  on(event: string, listener: (error: unknown) => void): this {
    this.stream.on(event, listener);
    return this;
  }
}
