import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { StartupError } from "../../adapters/process-lifecycle.ts";
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from "./postgres.ts";
import { type DevServer, startTemporalDevServer } from "./temporal.ts";

/**
 * The services `npm run dev` starts as child processes (Temporal dev server, embedded
 * PostgreSQL). They outlive a dev process that was killed (SIGKILL, a crashed terminal), so each
 * start first looks for its own leftovers, recognised by a pid file under the data folder whose
 * process still runs with that data folder on its command line, and stops them. Anything else
 * on a port gets a one-line StartupError saying what to do.
 */

type Log = (message: string) => void;

/** Whether a process with this pid runs (also for the test namespace leases). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user (PostgreSQL runs as `postgres` when we are root).
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The command line of a running process, or "" where /proc does not say. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\u0000", " ");
  } catch {
    return "";
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Sends `signal`, then SIGKILL after `graceMs`, and waits until the process is gone. */
async function stopProcess(pid: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A leftover of ours: the pid from `pidFile` still runs and its command line names `marker`
 * (the data file or folder only our service uses). Returns its pid.
 */
function ourLeftover(pidFile: string, marker: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number.parseInt(readFileSync(pidFile, "utf8").split("\n")[0] ?? "", 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return undefined;
  return commandLine(pid).includes(marker) ? pid : undefined;
}

export interface DevTemporalOptions {
  cli: string;
  dataDir: string;
  port: number;
  uiPort: number;
  log: Log;
}

/** The Temporal dev server of `npm run dev`, after stopping one a killed dev process left. */
export async function startDevTemporal(options: DevTemporalOptions): Promise<DevServer> {
  const dbFile = join(options.dataDir, "temporal.sqlite");
  const pidFile = join(options.dataDir, "temporal.pid");
  const leftover = ourLeftover(pidFile, dbFile);
  if (leftover !== undefined) {
    options.log(
      `stopping the Temporal dev server (pid ${leftover}) an earlier npm run dev left running`,
    );
    await stopProcess(leftover, "SIGTERM", 10_000);
  }
  rmSync(pidFile, { force: true });
  for (const [port, what, fix] of [
    [options.port, "Temporal", `TEMPORAL_ADDRESS=127.0.0.1:${options.port} to use that server`],
    [options.uiPort, "Temporal Web UI", "DEV_TEMPORAL_UI_PORT to another port"],
  ] as const) {
    if (await portInUse(port)) {
      throw new StartupError(
        `port ${port} (${what}) is in use by another program: stop it, or set ${fix}, or DEV_TEMPORAL_PORT / DEV_TEMPORAL_UI_PORT to free ports`,
      );
    }
  }
  const server = await startTemporalDevServer({
    cli: options.cli,
    dbFile,
    port: options.port,
    uiPort: options.uiPort,
    logLevel: "error",
  });
  if (server.process.pid) writeFileSync(pidFile, `${server.process.pid}\n`);
  return {
    ...server,
    stop: async () => {
      await server.stop();
      rmSync(pidFile, { force: true });
    },
  };
}

export interface DevPostgresOptions {
  dataDir: string;
  port: number;
  log: Log;
}

/** The embedded PostgreSQL of `npm run dev`, after stopping one a killed dev process left. */
export async function startDevPostgres(
  options: DevPostgresOptions,
): Promise<EmbeddedPostgresServer> {
  const pgDir = join(options.dataDir, "postgres");
  // PostgreSQL's own pid file; its command line carries `-D <data folder>`.
  const leftover = ourLeftover(join(pgDir, "postmaster.pid"), pgDir);
  if (leftover !== undefined) {
    options.log(
      `stopping the embedded PostgreSQL (pid ${leftover}) an earlier npm run dev left running`,
    );
    // SIGINT: PostgreSQL's fast shutdown (sessions ended, data flushed).
    await stopProcess(leftover, "SIGINT", 15_000);
  }
  if (await portInUse(options.port)) {
    throw new StartupError(
      `port ${options.port} (embedded PostgreSQL) is in use by another program: stop it, set DATABASE_URL to use that server, or DEV_POSTGRES_PORT to a free port`,
    );
  }
  return startEmbeddedPostgres({ dataDir: pgDir, port: options.port });
}
