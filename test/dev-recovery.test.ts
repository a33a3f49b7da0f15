import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../scripts/services/ports.ts";
import { PROJECT_ROOT } from "../scripts/services/temporal.ts";

/**
 * `npm run dev` after a crash: its Temporal dev server and embedded PostgreSQL outlive a dev
 * process killed with SIGKILL. The next start recognises them as its own (pid files under the
 * data folder) and stops them; a port held by anything else gets one line saying what to do.
 * Real services: the dev services are started by a child process exactly as dev.ts starts them.
 */

const dataDir = join(PROJECT_ROOT, ".data", `dev-recovery-${process.pid}`);
const started = new Set<number>();

interface Child {
  process: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | string>;
}

function startChild(dir: string, ports: number[]): Child {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/support/dev-services-child.ts", dir, ...ports.map(String)],
    { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function ready(child: Child): Promise<{ temporalPid: number; adminUrl: string }> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const line = child
      .stdout()
      .split("\n")
      .find((l) => l.startsWith('{"ready":true'));
    if (line) return JSON.parse(line);
    if (child.process.exitCode !== null || Date.now() > deadline) {
      throw new Error(`dev services did not start:\n${child.stdout()}\n${child.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidIn = (file: string) => Number(readFileSync(file, "utf8").split("\n")[0]);
const postgresPid = (dir: string) => pidIn(join(dir, "postgres", "postmaster.pid"));

async function selectOne(adminUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return (await client.query("SELECT 1 AS one")).rows[0].one;
  } finally {
    await client.end();
  }
}

async function listen(port: number): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

afterAll(async () => {
  // Only the processes this file started, by pid.
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${dataDir}-foreign`, { recursive: true, force: true });
});

describe("dev services after a crash", () => {
  it("a SIGKILLed dev process leaves its services running; the next start stops and replaces them", async () => {
    mkdirSync(dataDir, { recursive: true });
    // The embedded server runs as the `postgres` user when tests run as root.
    chmodSync(dataDir, 0o755);
    const ports = [await freePort(), await freePort(), await freePort()];

    const first = startChild(dataDir, ports);
    const one = await ready(first);
    const pgPid = postgresPid(dataDir);
    started.add(one.temporalPid).add(pgPid);
    expect(pidIn(join(dataDir, "temporal.pid"))).toBe(one.temporalPid);

    first.process.kill("SIGKILL");
    await first.exited;
    // What the issue saw: both services outlive the dev process.
    expect(alive(one.temporalPid)).toBe(true);
    expect(alive(pgPid)).toBe(true);

    const second = startChild(dataDir, ports);
    const two = await ready(second);
    started.add(two.temporalPid).add(postgresPid(dataDir));
    expect(second.stdout()).toContain(
      `log: stopping the Temporal dev server (pid ${one.temporalPid}) an earlier npm run dev left running`,
    );
    expect(second.stdout()).toContain(
      `log: stopping the embedded PostgreSQL (pid ${pgPid}) an earlier npm run dev left running`,
    );
    expect(alive(one.temporalPid)).toBe(false);
    expect(alive(pgPid)).toBe(false);
    expect(two.temporalPid).not.toBe(one.temporalPid);
    // The replacement serves the same data folder.
    expect(await selectOne(two.adminUrl)).toBe(1);
    second.process.kill("SIGKILL");
    await second.exited;
  }, 300_000);

  it("a port held by another program: one line saying what to do, no stack trace", async () => {
    const foreignDir = `${dataDir}-foreign`;
    mkdirSync(foreignDir, { recursive: true });
    const [temporalPort, uiPort, pgPort] = [await freePort(), await freePort(), await freePort()];
    const stranger = await listen(temporalPort);
    try {
      const child = startChild(foreignDir, [temporalPort, uiPort, pgPort]);
      expect(await child.exited).toBe(1);
      expect(child.stderr().trim()).toBe(
        `port ${temporalPort} (Temporal) is in use by another program: stop it, or set TEMPORAL_ADDRESS=127.0.0.1:${temporalPort} to use that server, or DEV_TEMPORAL_PORT / DEV_TEMPORAL_UI_PORT to free ports`,
      );
      expect(child.stderr()).not.toMatch(/\n\s+at /);
    } finally {
      await new Promise((resolve) => stranger.close(resolve));
    }
  }, 60_000);
});
