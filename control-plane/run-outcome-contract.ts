import type { SchedulerRunOutcome } from "../adapters/db/generated/prisma/enums.ts";
import type { RunOutcome } from "../domain/run-outcome.ts";

/**
 * The run outcomes are defined once, in domain/run-outcome.ts (workflow code needs them and
 * cannot load Prisma). This file holds the database side to that list: it fails type-checking
 * when the Prisma enum SchedulerRunOutcome and RUN_OUTCOMES differ in either direction.
 */

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

export const RUN_OUTCOMES_MATCH_PRISMA: Same<RunOutcome, SchedulerRunOutcome> = true;
