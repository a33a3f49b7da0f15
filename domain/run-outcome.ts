/**
 * The outcomes a scheduler run can have: the one definition every floor uses. It lives in
 * domain/ because workflow code names outcomes and cannot load the Prisma client; the database
 * enum SchedulerRunOutcome (prisma/schema.prisma) must list exactly these, and
 * control-plane/run-outcome-contract.ts fails type-checking when the two drift apart.
 */

/** Every value of the run table's outcome column: RUNNING until the run records its end. */
export const RUN_OUTCOMES = [
  "RUNNING",
  "SUCCEEDED",
  "PARTIAL",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];

/** Outcomes of a run that has ended. */
export const FINISHED_RUN_OUTCOMES = [
  "SUCCEEDED",
  "PARTIAL",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
] as const satisfies readonly RunOutcome[];
export type FinishedRunOutcome = (typeof FINISHED_RUN_OUTCOMES)[number];

/** Outcomes that count as a success (health's lastSuccess, metrics, the backlog's age). */
export const SUCCESSFUL_RUN_OUTCOMES = [
  "SUCCEEDED",
  "PARTIAL",
] as const satisfies readonly FinishedRunOutcome[];
export type SuccessfulRunOutcome = (typeof SUCCESSFUL_RUN_OUTCOMES)[number];

export function isSuccessfulOutcome(outcome: string): outcome is SuccessfulRunOutcome {
  return (SUCCESSFUL_RUN_OUTCOMES as readonly string[]).includes(outcome);
}
