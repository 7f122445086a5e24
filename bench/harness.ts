/**
 * A small, honest micro-benchmark harness: contenders run interleaved, round
 * after round, in one process, so each sees the same JIT and GC conditions;
 * the figure reported is the median of the rounds.
 */
export interface Contender {
  name: string;
  /** One sequential, awaited call. */
  call(): Promise<unknown>;
}

export interface Result {
  name: string;
  medianNs: number;
  minNs: number;
  maxNs: number;
}

export async function measure(contenders: Contender[], { iterations = 200_000, rounds = 7, warmup = 50_000 } = {}): Promise<Result[]> {
  for (const c of contenders) await run(c, warmup);
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const c of contenders) {
      const start = process.hrtime.bigint();
      await run(c, iterations);
      const ns = Number(process.hrtime.bigint() - start) / iterations;
      samples.get(c.name)!.push(ns);
    }
  }
  return contenders.map((c) => {
    const s = samples.get(c.name)!.sort((a, b) => a - b);
    return { name: c.name, medianNs: s[Math.floor(s.length / 2)]!, minNs: s[0]!, maxNs: s[s.length - 1]! };
  });
}

async function run(c: Contender, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await c.call();
}

export function table(results: Result[]): string {
  const width = Math.max(...results.map((r) => r.name.length));
  return results
    .map((r) => `${r.name.padEnd(width)}  ${r.medianNs.toFixed(0).padStart(8)} ns/call   (min ${r.minNs.toFixed(0)}, max ${r.maxNs.toFixed(0)})`)
    .join('\n');
}
