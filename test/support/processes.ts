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

/**
 * How a process runs: from the TypeScript sources (`node --import tsx api/main.ts`), or from the
 * output of `npm run build` (`node dist/api/main.js`), as the image runs it.
 */
export type ProcessRuntime = "tsx" | "compiled";

/** The entry point `script` (a .ts path) under `runtime`, from the project root, its stdout and
 * stderr collected. */
export function spawnEntry(
  script: string,
  args: string[],
  env: Record<string, string>,
  runtime: ProcessRuntime = "tsx",
) {
  const command =
    runtime === "compiled"
      ? [`dist/${script.replace(/\.ts$/, ".js")}`]
      : ["--import", "tsx", script];
  const child = spawn(process.execPath, [...command, ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, exited, output: () => output };
}

export async function spawnWorkerProcess(
  name: string,
  env: Record<string, string>,
  args: string[] = ["--all"],
  runtime: ProcessRuntime = "tsx",
): Promise<WorkerProcess> {
  const healthPort = await freePort();
  const { child, exited, output } = spawnEntry(
    "workers/main.ts",
    args,
    {
      ...env,
      SCHEDULER_INSTANCE_ID: name,
      WORKER_HEALTH_PORT: String(healthPort),
      LOG_LEVEL: env.LOG_LEVEL === "silent" ? "warn" : (env.LOG_LEVEL ?? "warn"),
    },
    runtime,
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
    output,
    exited,
    readyz,
    waitReady: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      while ((await readyz()) !== 200) {
        if (child.exitCode !== null) throw new Error(`${name} exited early:\n${output()}`);
        if (Date.now() > deadline)
          throw new Error(`${name} not ready after ${timeoutMs} ms:\n${output()}`);
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

/** The API the way operators run it (`tsx api/main.ts`), ready once /livez answers. */
export async function spawnApiProcess(
  env: Record<string, string>,
  runtime: ProcessRuntime = "tsx",
) {
  const port = await freePort();
  const { child, exited, output } = spawnEntry(
    "api/main.ts",
    [],
    { ...env, PORT: String(port) },
    runtime,
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = await fetch(`${url}/livez`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error(`the API did not start:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { url, child, exited, output };
}

/** `node --import tsx <script>` from the project root, its stdout and stderr collected. */
export function spawnTsx(script: string, args: string[], env: Record<string, string>) {
  return spawnEntry(script, args, env, "tsx");
}
