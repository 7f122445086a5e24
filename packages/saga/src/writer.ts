/**
 * Group commit for saga state. Sagas driven at once each make one write per
 * step; the writer sends every write that arrives while the previous batch
 * is in flight as the next batch (one statement on PostgreSQL), so the
 * database commits once for many sagas instead of once per step. A write
 * resolves when its batch has committed — a saga never calls its next
 * participant before its progress is durable.
 */
import { type InstanceRow, type Progress, type SagaRepository } from './repository.js';

interface Pending<W> {
  write: W;
  resolve: (applied: boolean) => void;
  reject: (error: unknown) => void;
}

export class SagaWriter {
  private inserts: Pending<InstanceRow>[] = [];
  private writes: Pending<Progress>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly repository: SagaRepository,
    /** Batches in flight at once. */
    private readonly concurrency: number,
  ) {}

  /** Inserts a new instance; resolves to false when an id or lock conflict kept it out. */
  insert(row: InstanceRow): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.inserts.push({ write: row, resolve, reject });
      this.schedule();
    });
  }

  /** A fenced progress write; resolves to false when the saga's lease was lost. */
  progress(write: Progress): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.writes.push({ write, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.inFlight === 0 && this.inserts.length === 0 && this.writes.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.concurrency) return;
    this.scheduled = true;
    // Let the writes made in this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const inserts = this.inserts;
    const writes = this.writes;
    if (inserts.length === 0 && writes.length === 0) return this.settle();
    this.inserts = [];
    this.writes = [];
    this.inFlight++;
    await Promise.all([
      inserts.length === 0 ? undefined : this.apply(inserts, (rows) => this.repository.insert(rows), (r) => r.id),
      writes.length === 0 ? undefined : this.apply(writes, (rows) => this.repository.progress(rows), (w) => w.id),
    ]);
    this.inFlight--;
    if (this.inserts.length > 0 || this.writes.length > 0) this.schedule();
    else this.settle();
  }

  private async apply<W>(batch: Pending<W>[], run: (rows: W[]) => Promise<Set<string>>, idOf: (w: W) => string): Promise<void> {
    try {
      const applied = await run(batch.map((p) => p.write));
      for (const p of batch) p.resolve(applied.has(idOf(p.write)));
    } catch (error) {
      if (batch.length === 1) return (batch[0] as Pending<W>).reject(error);
      // One bad write fails its whole batch: write each alone so only that one fails.
      await Promise.all(batch.map((p) => this.apply([p], run, idOf)));
    }
  }

  private settle(): void {
    if (this.inFlight > 0 || this.inserts.length > 0 || this.writes.length > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
