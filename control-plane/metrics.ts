import { Counter, collectDefaultMetrics, type Metric, Registry } from "prom-client";
import { METRIC_PREFIX, METRICS, type MetricSpec } from "./metrics-families.ts";
import { type PlatformMetricsDeps, readSnapshot, type Snapshot } from "./metrics-scrape.ts";

/**
 * Prometheus metrics of the platform, computed at scrape time from Temporal and the database.
 * Nothing is counted in process memory (except scrape errors), so every API replica, with or
 * without workers, reports the same values. One read serves every scrape within `cacheMs`, so
 * several Prometheus servers scraping several replicas do not each run the aggregates.
 * Process metrics keep their standard names (`process_*`, `nodejs_*`) for stock dashboards.
 */

export { METRIC_PREFIX } from "./metrics-families.ts";
export { type PlatformMetricsDeps, RUN_DURATION_BUCKETS } from "./metrics-scrape.ts";

export interface PlatformMetrics {
  /** Every platform metric plus the process metrics; render with `registry.metrics()`. */
  registry: Registry;
}

export function createPlatformMetrics(deps: PlatformMetricsDeps): PlatformMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // Every metric of one scrape shares one read; concurrent scrapes share it too, and so do
  // scrapes within the cache window after it.
  // A read still running is shared however old; a finished one for cacheMs after it ended.
  let current: { read: Promise<Snapshot>; endedAt?: number } | undefined;
  const snapshot = (): Promise<Snapshot> => {
    const endedAt = current?.endedAt;
    if (!current || (endedAt !== undefined && Date.now() - endedAt >= (deps.cacheMs ?? 0))) {
      const entry: { read: Promise<Snapshot>; endedAt?: number } = {
        read: readSnapshot(deps, (source, reason) => {
          scrapeErrors.inc({ source });
          deps.log?.warn(
            { source, reason },
            "metrics: source unavailable, its metrics are omitted",
          );
        }),
      };
      const ended = (at: number) => () => {
        entry.endedAt = at || Date.now();
      };
      entry.read.then(ended(0), ended(Number.NEGATIVE_INFINITY));
      current = entry;
    }
    return current.read;
  };

  const scrapeErrors = new Counter({
    name: `${METRIC_PREFIX}metrics_scrape_errors_total`,
    help: "Metric reads in this process whose source (temporal, database) could not be read.",
    labelNames: ["source"] as const,
    registers: [registry],
    // Rendered after this scrape's read, so a failure shows in the scrape that hit it.
    collect: async () => {
      await snapshot();
    },
  });
  for (const source of ["temporal", "database"] as const) scrapeErrors.inc({ source }, 0);

  for (const spec of METRICS) {
    // prom-client's Registry renders any registered object through name, help, type and get();
    // its type declarations only admit prom-client's own classes.
    registry.registerMetric(new SnapshotMetric(spec, snapshot) as unknown as Metric);
  }
  return { registry };
}

/**
 * A metric whose samples come from the scrape's snapshot. Unlike prom-client's Gauge, it has
 * no samples at all while its source is unavailable (a Gauge without labels would show 0), and
 * it can render a histogram aggregated in SQL.
 */
class SnapshotMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricSpec["type"];
  /** For prom-client's cluster aggregation: every process reads the same sources. */
  readonly aggregator = "first";

  constructor(
    private readonly spec: MetricSpec,
    private readonly snapshot: () => Promise<Snapshot>,
  ) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
  }

  async get() {
    const values = this.spec.samples(await this.snapshot());
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Values live in the sources; there is nothing to reset. */
  reset(): void {}
}
