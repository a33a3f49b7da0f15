import type { RetryPolicy } from "@temporalio/common";

/**
 * The backoff of an activity that reaches an outside service (a CSV or transcript source, the
 * model): doubling from the operator's first wait (`*_RETRY_INTERVAL_MS`, carried in the run's
 * input; absent in runs started before it, which keep `defaultMs`), capped at `capMs` or at the
 * first wait when that is longer, since Temporal refuses a cap below the first interval.
 */
export function doublingBackoff(
  firstMs: number | undefined,
  defaultMs: number,
  capMs: number,
): Pick<RetryPolicy, "initialInterval" | "backoffCoefficient" | "maximumInterval"> {
  const initialInterval = firstMs ?? defaultMs;
  return {
    initialInterval,
    backoffCoefficient: 2,
    maximumInterval: Math.max(initialInterval, capMs),
  };
}
