/**
 * The machine's CPU use while a draining bench (throughput, backlog drain) runs, from /proc: on a
 * 2-core machine it is the ceiling a worker count runs into, and the report says who used it.
 */

import { readdirSync, readFileSync } from "node:fs";

export interface CpuShare {
  /** Share of the machine's CPU time spent at normal priority (the bench and its services). */
  busy: number;
  /** Share spent by niced processes (other work on the machine, kept out of the bench's way). */
  niced: number;
  /** Share of one-second samples in which normal-priority work held 90% or more of every core. */
  saturated: number;
  /** The busiest second's normal-priority share, and the median second's. */
  peak: number;
  median: number;
  /** Cores used on average by each group of processes (2.0 = both cores of a 2-core machine). */
  cores: Record<ProcessGroup, number>;
}

type ProcessGroup = "workers" | "temporal" | "postgres" | "bench" | "other";

function machineTimes() {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "")
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  const nice = fields[1] ?? 0;
  // guest time is already counted in user time.
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, nice, total };
}

function groupOf(pid: number, comm: string): ProcessGroup {
  if (pid === process.pid) return "bench";
  if (comm === "postgres") return "postgres";
  if (comm.startsWith("temporal")) return "temporal";
  if (comm.startsWith("node")) {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (cmdline.includes("workers/main")) return "workers";
  }
  return "other";
}

/** CPU ticks (user + system) of every live process, by pid, with its group. */
function processTimes(): Map<number, { group: ProcessGroup; ticks: number }> {
  const times = new Map<number, { group: ProcessGroup; ticks: number }>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // The command name is in parentheses and may hold spaces; the fields after it are fixed.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const rest = stat.slice(close + 2).split(" ");
      const ticks = Number(rest[11]) + Number(rest[12]);
      times.set(pid, { group: groupOf(pid, comm), ticks });
    } catch {
      // The process exited while it was being read.
    }
  }
  return times;
}

const TICKS_PER_SECOND = 100;

/**
 * Machine-wide CPU use while a case runs, from /proc: the average and every second's share of
 * all cores, split into normal priority and niced time (other work on a shared machine runs
 * niced, so `busy` near 1 means the bench itself ran into the CPU ceiling), and which processes
 * used it. A process that exits before the reading counts for nothing, so read before stopping.
 */
export function cpuMeter(): () => CpuShare {
  const start = machineTimes();
  const startedAt = Date.now();
  const processesAtStart = processTimes();
  const seconds: number[] = [];
  let last = start;
  const sampler = setInterval(() => {
    const now = machineTimes();
    const total = now.total - last.total;
    if (total > 0) seconds.push(1 - (now.idle - last.idle + now.nice - last.nice) / total);
    last = now;
  }, 1_000);
  sampler.unref();
  return () => {
    clearInterval(sampler);
    const end = machineTimes();
    const elapsedSeconds = (Date.now() - startedAt) / 1000;
    const cores: Record<ProcessGroup, number> = {
      workers: 0,
      temporal: 0,
      postgres: 0,
      bench: 0,
      other: 0,
    };
    for (const [pid, { group, ticks }] of processTimes()) {
      const before = processesAtStart.get(pid)?.ticks ?? 0;
      cores[group] += (ticks - before) / TICKS_PER_SECOND / elapsedSeconds;
    }
    const sorted = [...seconds].sort((a, b) => a - b);
    const total = end.total - start.total;
    const niced = total > 0 ? (end.nice - start.nice) / total : 0;
    return {
      busy: total > 0 ? 1 - (end.idle - start.idle) / total - niced : 0,
      niced,
      saturated: sorted.length ? sorted.filter((s) => s >= 0.9).length / sorted.length : 0,
      peak: sorted.at(-1) ?? 0,
      median: sorted[Math.floor(sorted.length / 2)] ?? 0,
      cores,
    };
  };
}

/** One line for a bench log: the average, the seconds at the ceiling, and who used the CPU. */
export function describeCpu(cpu: CpuShare): string {
  const pct = (n: number) => `${(n * 100).toFixed(0)}%`;
  const groups = Object.entries(cpu.cores)
    .map(([group, cores]) => `${group} ${cores.toFixed(2)}`)
    .join(", ");
  return `CPU ${pct(cpu.busy)} busy (median second ${pct(cpu.median)}, peak ${pct(cpu.peak)}, ${pct(cpu.saturated)} of seconds at >= 90%; +${pct(cpu.niced)} niced other work); cores used: ${groups}`;
}
