import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "../../scripts/services/ports.ts";
import { PROJECT_ROOT } from "../../scripts/services/temporal.ts";

/** A worker process started the way operators start one (`tsx workers/main.ts`). */
export interface WorkerProcess {
  name: string;
  healthPort: number;
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  readyz(): Promise<number>;
  waitReady(timeoutMs?: number): Promise<void>;
}

export async function spawnWorkerProcess(
  name: string,
  env: Record<string, string>,
  args: string[] = ["--all"],
): Promise<WorkerProcess> {
  const healthPort = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", "workers/main.ts", ...args], {
    cwd: PROJECT_ROOT,
    env: {
      ...process.env,
      ...env,
      SCHEDULER_INSTANCE_ID: name,
      WORKER_HEALTH_PORT: String(healthPort),
      LOG_LEVEL: env.LOG_LEVEL === "silent" ? "warn" : (env.LOG_LEVEL ?? "warn"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  const readyz = async () => {
    try {
      return (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status;
    } catch {
      return 0;
    }
  };
  return {
    name,
    healthPort,
    child,
    output: () => output,
    exited,
    readyz,
    waitReady: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while ((await readyz()) !== 200) {
        if (child.exitCode !== null) throw new Error(`${name} exited early:\n${output}`);
        if (Date.now() > deadline)
          throw new Error(`${name} not ready after ${timeoutMs} ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
  };
}

/**
 * SIGKILL, the crash no shutdown hook sees: in-flight activities are abandoned mid-work and the
 * server only learns of it through their heartbeat (or start-to-close) timeout.
 */
export async function killWorkerProcess(worker: WorkerProcess): Promise<number | string> {
  worker.child.kill("SIGKILL");
  return worker.exited;
}
