import { defineConfig } from "vitest/config";

const timeouts = { testTimeout: 60_000, hookTimeout: 120_000, teardownTimeout: 60_000 };
/**
 * Two layers (docs/testing.md). `unit`: pure rules, parsers, manifests, the OpenAI stand-in and
 * workflows with mocked activities on an ephemeral Temporal server (test/unit-setup.ts), no
 * database; files in parallel (`npm run test:unit`). `integration`: the real-service suites,
 * after the unit layer, on one Temporal dev server and one PostgreSQL (test/global-setup.ts).
 * Each integration file has its own database, REGION and leased Temporal namespace, so three
 * files run side by side: most of their time is waiting on timers and services. The suite is
 * CPU-bound on 2 cores; four at a time was faster on a warm checkout but timed a fault test out
 * in a fresh clone, so three it stays (docs/testing.md has the measurements).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          globalSetup: ["test/unit-setup.ts"],
          // Most of the layer waits on timers and local sockets, not the CPU.
          maxWorkers: 4,
          sequence: { groupOrder: 0 },
          ...timeouts,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/unit/**"],
          globalSetup: ["test/global-setup.ts"],
          // One at a time on an outside server (TEMPORAL_ADDRESS): it has one namespace for all.
          maxWorkers: process.env.TEMPORAL_ADDRESS ? 1 : 3,
          sequence: { groupOrder: 1 },
          ...timeouts,
        },
      },
    ],
  },
});
