/**
 * Sessions of Prisma's WebAssembly schema engine (@prisma/schema-engine-wasm): the wasm compiled
 * and instantiated once per process, each session on its own pg pools and shadow databases
 * (migrations-engine-adapters.ts), all closed before it returns, so nothing is left holding the
 * event loop open. Engine errors come out as MigrationError.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import {
  bindMigrationAwareSqlAdapterFactory,
  type ErrorRegistry,
} from "@prisma/driver-adapter-utils";
import type { SchemaEngine } from "@prisma/schema-engine-wasm";
import { EngineAdapterFactory, type MigrationsTable } from "./migrations-engine-adapters.ts";
import { MigrationError } from "./migrations-error.ts";

/** One engine session: its own pools (and shadow databases), all closed before returning. */
export async function withSchemaEngine<T>(
  databaseUrl: string,
  use: (engine: SchemaEngine, database: MigrationsTable) => Promise<T>,
): Promise<T> {
  const Engine = await loadSchemaEngine();
  const adapters = new EngineAdapterFactory(databaseUrl);
  const bound = bindMigrationAwareSqlAdapterFactory(adapters);
  let engine: SchemaEngine | undefined;
  try {
    engine = await Engine.new({ datamodels: undefined }, logEngineMessage, bound);
    return await use(engine, adapters);
  } catch (error) {
    throw engineError(error, bound.errorRegistry);
  } finally {
    engine?.free();
    await adapters.close();
  }
}

type SchemaEngineClass = typeof SchemaEngine;
/**
 * The one wasm instance and its panic, kept on globalThis: the glue module lives once per process
 * (Node's module cache) and cannot host a second instance, while a test runner may load this
 * file twice (two Vitest projects' global setups did, and the second instance broke the first).
 */
interface SharedEngine {
  engine?: Promise<SchemaEngineClass>;
  panic?: string;
}
const SHARED_KEY = Symbol.for("livedash.schema-engine-wasm");
const processWide = globalThis as Record<symbol, SharedEngine | undefined>;
const shared: SharedEngine = processWide[SHARED_KEY] ?? {};
processWide[SHARED_KEY] = shared;

function loadSchemaEngine(): Promise<SchemaEngineClass> {
  // A panicked wasm instance is unusable, and wasm-bindgen's glue cannot host a second one.
  if (shared.panic) throw new MigrationError(`schema engine panicked earlier: ${shared.panic}`);
  // One instance per process, shared by every engine session.
  shared.engine ??= instantiateSchemaEngine();
  return shared.engine;
}

/**
 * The package entry imports the .wasm as an ES module, which Node 20 cannot do; like the Prisma
 * CLI, compile it ourselves and wire it to the wasm-bindgen glue (schema_engine_bg.js).
 */
async function instantiateSchemaEngine(): Promise<SchemaEngineClass> {
  const gluePath = createRequire(import.meta.url).resolve(
    "@prisma/schema-engine-wasm/schema_engine_bg",
  );
  const glue = await import("@prisma/schema-engine-wasm/schema_engine_bg");
  const wasm = await wasmApi.compile(await readFile(gluePath.replace(/\.js$/, ".wasm")));
  const instance = await wasmApi.instantiate(wasm, {
    "./schema_engine_bg.js": withUnrefTimers(glue),
  });
  // The glue reports Rust panics to this global.
  Object.assign(globalThis, {
    PRISMA_WASM_PANIC_REGISTRY: {
      set_message: (message: string) => {
        shared.panic = message;
      },
    },
  });
  glue.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  return glue.SchemaEngine;
}

/** Node's WebAssembly global, which the project's libs (ES2023, no DOM) leave untyped. */
const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
interface WebAssemblyApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ): Promise<{ exports: Record<string, unknown> }>;
}

/**
 * The engine arms 10 s timers that nothing clears, which kept finished scripts alive ~10 s.
 * Unref'd, they cannot hold the process open; when one fires later it is a harmless no-op.
 */
function withUnrefTimers(glue: object): Record<string, unknown> {
  const imports: Record<string, unknown> = { ...glue };
  for (const name of Object.keys(imports)) {
    if (name.startsWith("__wbg_setTimeout_")) {
      imports[name] = (callback: () => void, ms: number) => setTimeout(callback, ms >>> 0).unref();
    }
  }
  return imports;
}

/** The engine's log lines are JSON; INFO and below are routine, warnings are worth showing. */
function logEngineMessage(line: string): void {
  try {
    const { level, fields } = JSON.parse(line) as { level?: string; fields?: { message?: string } };
    if (level === "WARN" || level === "ERROR") console.warn(`schema engine: ${fields?.message}`);
  } catch {
    // not JSON: ignore
  }
}

/**
 * Engine errors end in a Rust span trace: keep the message, name the migration being applied,
 * and swap "External error id#N" for the JS error our adapter threw (kept by the binder).
 */
function engineError(error: unknown, registry: ErrorRegistry): unknown {
  if (error instanceof MigrationError || !(error instanceof Error)) return error;
  const [head = "", trace = ""] = error.message.split(/\n\s+0: /);
  let message = head.trim();
  const external = /External error id#(\d+)/.exec(message);
  const jsError = external ? registry.consumeError(Number(external[1]))?.error : undefined;
  if (external && jsError instanceof Error) message = message.replace(external[0], jsError.message);
  const migration = /migration_name="([^"]+)"/.exec(trace)?.[1];
  const code = (error as { code?: unknown }).code;
  const prefix = [typeof code === "string" ? code : "", migration ? `migration ${migration}` : ""];
  return new MigrationError([...prefix.filter(Boolean), message].join(": "), {
    cause: jsError ?? error,
  });
}
