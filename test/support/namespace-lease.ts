import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRunning } from "../../scripts/services/dev-services.ts";

/**
 * A Temporal namespace held by one test process at a time. A worker's schedule reconcile lists
 * and deletes orphaned schedules namespace-wide, so two test files that run side by side must
 * never share a namespace. Vitest's VITEST_POOL_ID can repeat between two runners alive at once,
 * so the namespaces (created by the dev server at start, test/global-setup.ts) are leased instead:
 * a lease is a directory made atomically with mkdir, naming its process; a process that died
 * without giving it back (SIGKILL) no longer exists, so its lease is taken over.
 */
export function leaseNamespace(namespaces: readonly string[], runId: string): string {
  const dir = join(tmpdir(), `livedash-test-namespaces-${runId}`);
  mkdirSync(dir, { recursive: true });
  for (const namespace of namespaces) {
    const lease = join(dir, namespace);
    const holder = holderOf(lease);
    if (holder === process.pid) return namespace;
    if (holder !== undefined && isRunning(holder)) continue;
    if (holder !== undefined) rmSync(lease, { recursive: true, force: true });
    try {
      mkdirSync(lease);
    } catch {
      continue; // another process took it first
    }
    writeFileSync(join(lease, "pid"), String(process.pid));
    process.once("exit", () => rmSync(lease, { recursive: true, force: true }));
    return namespace;
  }
  throw new Error(
    `all ${namespaces.length} test namespaces are leased: more integration files run at once than test/global-setup.ts creates namespaces for`,
  );
}

/** The pid a lease names; undefined when there is no lease (or it is being written). */
function holderOf(lease: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(lease, "pid"), "utf8"));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
