import { defineConfig } from "vitest/config";

const timeouts = { testTimeout: 60_000, hookTimeout: 120_000, teardownTimeout: 60_000 };
/**
 * Two layers (docs/testing.md). `unit`: pure rules, parsers, manifests, the OpenAI stand-in and
 * workflows with mocked activities on an ephemeral Temporal server (test/unit-setup.ts), no
 * database (`npm run test:unit`). `integration`: the real-service suites on one Temporal dev
 * server and one PostgreSQL (test/global-setup.ts); each file has its own database, REGION and
 * leased Temporal namespace, so files run side by side: most of their time is waiting on timers
 * and services. `npm test` runs both as one group of four files at a time, the integration files
 * first (the longest ones start at once) and the short unit files filling the slots the last
 * integration files leave (on 2 cores: three integration files at a time after the unit layer
 * took 322-371 s, four 313 s, all passing).
 */
const workers = 4;
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          globalSetup: ["test/unit-setup.ts"],
          maxWorkers: workers,
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
          maxWorkers: process.env.TEMPORAL_ADDRESS ? 1 : workers,
          sequence: { groupOrder: process.env.TEMPORAL_ADDRESS ? 1 : 0 },
          ...timeouts,
        },
      },
    ],
  },
});
