/**
 * CPU time spent by this process and by the servers it drives (PostgreSQL,
 * NATS, ...) over a phase of a benchmark, read from /proc (Linux). Figures
 * per unit of work (µs of CPU per commit, per message) say what a design
 * costs even on a machine busy with other work, where rates alone mislead.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ on Linux

export interface CpuSample {
  /** This process, user + system, µs. */
  selfUs: number;
  /** Per server command name (`postgres`, `nats-server`, ...), user + system of every process with that name, µs. */
  servers: Map<string, number>;
}

/** Reads CPU totals now; `servers` are the process names (`comm`) to add up. */
export function cpuSample(servers: readonly string[]): CpuSample {
  const usage = process.cpuUsage();
  const totals = new Map<string, number>(servers.map((s) => [s, 0]));
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    // not Linux: servers stay at 0
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    if (!totals.has(comm)) continue;
    const fields = stat.slice(close + 2).split(' ');
    // fields[11] utime, fields[12] stime, fields[13] cutime, fields[14] cstime (after state at [0])
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    totals.set(comm, totals.get(comm)! + (ticks * 1e6) / TICKS_PER_S);
  }
  return { selfUs: usage.user + usage.system, servers: totals };
}

/** CPU µs per unit between two samples: this process, each server, and the total. */
export function cpuPerUnit(before: CpuSample, after: CpuSample, units: number): { selfUs: number; servers: Record<string, number>; totalUs: number } {
  const selfUs = (after.selfUs - before.selfUs) / units;
  const servers: Record<string, number> = {};
  let totalUs = selfUs;
  for (const [name, us] of after.servers) {
    const per = (us - (before.servers.get(name) ?? 0)) / units;
    servers[name] = Math.round(per);
    totalUs += per;
  }
  return { selfUs: Math.round(selfUs), servers, totalUs: Math.round(totalUs) };
}
