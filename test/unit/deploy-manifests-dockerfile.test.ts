/**
 * Static checks of the image: Dockerfile and .dockerignore against the code they package:
 * package.json, tsconfig.build.json (what `npm run build` compiles into dist/) and the sources
 * the deployed entry points load. No Docker engine is involved; test/compiled-build.test.ts runs
 * the compiled processes themselves.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import {
  compiledByBuild,
  compiledEntry,
  copySources,
  deployCommands,
  deployedEntryPoints,
  dockerfile,
  IMAGE_ENV_NAME,
  packageScripts,
  ROOT,
  readText,
  runtimeCopies,
  runtimeEnv,
  runtimeStage,
  sourceClosure,
} from "../support/deploy-files.ts";

const pkg = JSON.parse(readText("package.json")) as {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Exec-form instruction arguments (`["a", "b"]`) as a list. */
function execForm(args: string | undefined): string[] | undefined {
  return args?.startsWith("[") ? (JSON.parse(args) as string[]) : undefined;
}

describe("commands", () => {
  it("every deployed command runs node on a compiled entry point, with no npm or shell between", () => {
    // npm and `sh -c` stand between the signal and the app: on SIGTERM the shell dies and the
    // process never drains. `node dist/...` is signalled directly (tini forwards it).
    expect(deployCommands.length).toBeGreaterThan(0);
    for (const { where, command } of deployCommands) {
      expect(compiledEntry(command), `${where}: "${command}"`).toBeDefined();
      expect(command, where).not.toMatch(/\b(npm|npx|tsx|sh|bash)\b|[;&|`]/);
    }
  });

  it("npm start runs the same compiled entry point as the image's default command", () => {
    const cmd = execForm(runtimeStage.instructions.findLast((i) => i.keyword === "CMD")?.args);
    expect(cmd, "default CMD (exec form)").toEqual(["node", "dist/scripts/start.js"]);
    expect(packageScripts.start).toBe(cmd?.join(" "));
  });

  it("npm run build compiles every deployed entry point and what it imports", () => {
    expect(packageScripts.build, "package.json build").toContain("tsc -p tsconfig.build.json");
    for (const entry of deployedEntryPoints()) {
      const missing = sourceClosure(entry).filter((file) => !compiledByBuild(file));
      expect(missing.join(", "), `files ${entry} loads that tsconfig.build.json leaves out`).toBe(
        "",
      );
    }
  });
});

describe("Dockerfile", () => {
  it("builds in stages from pinned base images", () => {
    const { stages } = dockerfile;
    expect(stages.length, "a deps stage and a slim runtime stage at least").toBeGreaterThanOrEqual(
      2,
    );
    const stageNames = new Set(stages.map((s) => s.name).filter(Boolean));
    for (const stage of stages) {
      if (stageNames.has(stage.from)) continue;
      expect(stage.from, "base images are pinned to a version, never latest").toMatch(
        /^[\w./-]+:(?!latest\b)[\w.-]*\d[\w.-]*(@sha256:[0-9a-f]{64})?$/,
      );
    }
  });

  it("runs a supported Node LTS (22 or later) while package.json still allows Node 20", () => {
    const major = Number(/^(\d+)\./.exec(dockerfile.args.NODE_VERSION ?? "")?.[1]);
    expect(major, "ARG NODE_VERSION").toBeGreaterThanOrEqual(22);
    expect(major % 2, "an even (LTS) release line").toBe(0);
    expect(dockerfile.stages[0]?.from, "base image").toBe(
      `node:${dockerfile.args.NODE_VERSION}-bookworm-slim`,
    );
    expect(pkg.engines.node, "engines").toMatch(/^>=20\./);
  });

  it("runs node under an init process, as a non-root user", () => {
    const user = runtimeStage.instructions.filter((i) => i.keyword === "USER").at(-1)?.args;
    expect(user, "the runtime stage sets USER").toBeDefined();
    expect(user?.split(":")[0], "USER is not root").not.toMatch(/^(root|0)$/);
    // PID 1 gets no default signal handlers and must reap orphans: tini does both, also on
    // Kubernetes, where no `docker run --init` exists.
    const entrypoint = execForm(
      runtimeStage.instructions.findLast((i) => i.keyword === "ENTRYPOINT")?.args,
    );
    expect(entrypoint, "ENTRYPOINT (exec form)").toEqual(["/usr/bin/tini", "--"]);
    const installs = runtimeStage.instructions.filter((i) => i.keyword === "RUN");
    expect(
      installs.some((i) => /apt-get install .*\btini\b/.test(i.args)),
      "installs tini",
    ).toBe(true);
  });

  it("keeps tsx and the prisma CLI out of the production dependencies", () => {
    for (const name of ["tsx", "prisma", "typescript"]) {
      expect(pkg.dependencies[name], `${name} in dependencies`).toBeUndefined();
      expect(pkg.devDependencies[name], `${name} in devDependencies`).toBeDefined();
    }
  });

  it("builds dist/ in a build stage and takes only production packages into the runtime", () => {
    const distCopy = runtimeCopies.find((c) => c.from && c.sources.some((s) => s.endsWith("dist")));
    const buildStage = dockerfile.stages.find((s) => s.name === distCopy?.from);
    expect(
      buildStage?.instructions.some((i) => i.keyword === "RUN" && /\bnpm run build\b/.test(i.args)),
      "COPY --from=<stage running npm run build> /app/dist",
    ).toBe(true);

    const modulesCopy = runtimeCopies.find(
      (c) => c.from && c.sources.some((s) => s.endsWith("node_modules")),
    );
    const depsStage = dockerfile.stages.find((s) => s.name === modulesCopy?.from);
    const install = depsStage?.instructions.find(
      (i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args),
    );
    // --omit=optional too: prisma and typescript are optional peers of @prisma/client, which
    // npm keeps under --omit=dev alone.
    for (const flag of ["--omit=dev", "--omit=optional", "--ignore-scripts"]) {
      expect(install?.args, `node_modules come from an npm ci ${flag} stage`).toContain(flag);
    }
    expect(runtimeEnv.NODE_ENV, "runtime stage ENV").toBe("production");
  });

  it("copies no TypeScript sources into the runtime stage, only dist/ and what it reads", () => {
    const fromContext = runtimeCopies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    // package.json ("type": "module" for dist/*.js), prisma/ (migrations, schema).
    expect(fromContext.sort()).toEqual(["package.json", "prisma"]);
    expect(runtimeStage.instructions.some((i) => /\btsx\b/.test(i.args))).toBe(false);
  });

  it("sets only Node's and the C library's variables in the image", () => {
    for (const name of Object.keys(runtimeEnv)) {
      expect(name, "configuration belongs to compose/Kubernetes, not the image").toMatch(
        IMAGE_ENV_NAME,
      );
    }
  });

  it(".dockerignore keeps local state, secrets and tests out of the build context", () => {
    const patterns = readText(".dockerignore")
      .split("\n")
      .map((line) => line.trim().replace(/^\//, "").replace(/\/$/, ""))
      .filter((line) => line && !line.startsWith("#"));
    for (const required of [
      "node_modules",
      ".data",
      ".tools",
      ".git",
      ".env",
      "adapters/db/generated",
      "test",
      "bench",
      "coverage",
      "dist",
    ]) {
      expect(patterns, `.dockerignore lists ${required}`).toContain(required);
    }
    const copiedFromContext = dockerfile.stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === "COPY")
      .map((i) => copySources(i.args))
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    for (const source of copiedFromContext) {
      const excluded = patterns.find((p) => source === p || source.startsWith(`${p}/`));
      expect(excluded, `Dockerfile copies ${source}, which .dockerignore excludes`).toBeUndefined();
    }
  });
});

describe("deployed entry points", () => {
  it("import only production dependencies (the image has no others)", () => {
    for (const file of [...new Set(deployedEntryPoints().flatMap(sourceClosure))]) {
      // Type-only imports are erased by tsc; node: built-ins need no package.
      const source = readText(file).replace(/import\s+type\s[^;]*;/g, "");
      for (const [, specifier = ""] of source.matchAll(/\sfrom\s*["']([^."'][^"']*)["']/g)) {
        if (specifier.startsWith("node:")) continue;
        const name = specifier.startsWith("@")
          ? specifier.split("/").slice(0, 2).join("/")
          : (specifier.split("/")[0] ?? specifier);
        expect(
          pkg.dependencies[name],
          `${file} imports ${specifier}: ${name} must be a production dependency`,
        ).toBeDefined();
      }
    }
  });

  it("load their modules under Node's ESM loader (through tsx)", async () => {
    // Vitest resolves CommonJS named exports that Node's ESM loader rejects (a named import from
    // a CommonJS package), so a module can pass every test and still crash `npm run api` at
    // startup. Import every module the entry points load (not the entry points themselves,
    // which start servers; not the workflow code, which only runs bundled in the sandbox).
    const entries = deployedEntryPoints();
    const modules = [...new Set(entries.flatMap(sourceClosure))].filter(
      (file) => !entries.includes(file) && !file.startsWith("workflows/"),
    );
    const dir = await mkdtemp(join(tmpdir(), "livedash-deploy-"));
    try {
      const probe = join(dir, "load.mts");
      const imports = modules.map(
        (f) => `await import(${JSON.stringify(pathToFileURL(join(ROOT, f)).href)});`,
      );
      await writeFile(probe, `${imports.join("\n")}\n`);
      const result = await new Promise<{ code: number | null; stderr: string }>((done) => {
        execFile(
          join(ROOT, "node_modules/.bin/tsx"),
          [probe],
          { cwd: ROOT, timeout: 60_000 },
          (error, _stdout, stderr) => done({ code: error ? (error.code as number) : 0, stderr }),
        );
      });
      const firstLines = result.stderr.trim().split("\n").slice(0, 6).join("\n");
      expect(result.code, `a module of ${entries.join(", ")} fails under tsx:\n${firstLines}`).toBe(
        0,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
