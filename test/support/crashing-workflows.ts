// Workflow code for the worker-restart test: the production workflows plus one that crashes the
// workflow worker thread, the failure the Temporal SDK treats as fatal to a Worker.
export * from "../../workflows/index.ts";

/**
 * Fault injection: ends the worker thread that runs workflow code, as a native crash or an
 * out-of-memory kill of that thread would. The sandbox hides `process`; a host object's
 * Function constructor still reaches the thread's own (vm contexts are no security boundary).
 */
export async function crashWorkflowThread(): Promise<void> {
  const hosts: unknown[] = [Object.getPrototypeOf(globalThis), globalThis.console];
  for (const host of hosts) {
    const HostFunction = (host as { constructor?: { constructor?: FunctionConstructor } })
      ?.constructor?.constructor;
    const threadProcess = HostFunction?.("return typeof process === 'object' ? process : null")() as
      | { exit(code: number): never }
      | null
      | undefined;
    threadProcess?.exit(1);
  }
  throw new Error("could not reach the worker thread's process object");
}
