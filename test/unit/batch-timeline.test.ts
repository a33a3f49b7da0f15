/**
 * The OpenAI stand-in's batch timeline is pure: a batch's state at any instant follows from its
 * creation time, durations, outcome and cancel request. These pin that arithmetic without a
 * server or a clock.
 */
import { describe, expect, it } from "vitest";
import { type BatchSchedule, timelineAt } from "../../openai-stand-in/batch-timeline.ts";

const T0 = 1_700_000_000_000;

function batch(patch: Partial<BatchSchedule> = {}): BatchSchedule {
  return {
    createdAtMs: T0,
    timings: { validatingMs: 100, inProgressMs: 1000, finalizingMs: 100, cancellingMs: 50 },
    outcome: "completed",
    validationErrors: [],
    results: Array.from({ length: 10 }, (_, index) => index),
    cancelRequestedAtMs: null,
    ...patch,
  };
}

describe("batch timeline", () => {
  it("moves validating -> in_progress -> finalizing -> completed, running lines evenly", () => {
    const b = batch();
    expect(timelineAt(b, T0 + 99)).toMatchObject({ status: "validating", executed: 0 });
    expect(timelineAt(b, T0 + 100)).toMatchObject({
      status: "in_progress",
      executed: 0,
      inProgressAt: T0 + 100,
    });
    expect(timelineAt(b, T0 + 600).executed).toBe(5);
    expect(timelineAt(b, T0 + 1100)).toMatchObject({
      status: "finalizing",
      executed: 10,
      finalizingAt: T0 + 1100,
    });
    expect(timelineAt(b, T0 + 1200)).toMatchObject({
      status: "completed",
      executed: 10,
      completedAt: T0 + 1200,
    });
  });

  it("fails when validation ends if the input had errors or the outcome says so", () => {
    for (const b of [batch({ validationErrors: [{}] }), batch({ outcome: "failed" })]) {
      expect(timelineAt(b, T0 + 50).status).toBe("validating");
      expect(timelineAt(b, T0 + 100)).toMatchObject({ status: "failed", failedAt: T0 + 100 });
    }
  });

  it("expires at the end of in_progress having run only half of the lines", () => {
    const b = batch({ outcome: "expired" });
    expect(timelineAt(b, T0 + 1100)).toMatchObject({
      status: "expired",
      executed: 5,
      expiredAt: T0 + 1100,
    });
  });

  it("freezes at the cancel request, then is cancelled after cancellingMs", () => {
    const b = batch({ cancelRequestedAtMs: T0 + 600 });
    expect(timelineAt(b, T0 + 630)).toMatchObject({
      status: "cancelling",
      executed: 5,
      cancellingAt: T0 + 600,
    });
    expect(timelineAt(b, T0 + 5000)).toMatchObject({
      status: "cancelled",
      executed: 5,
      cancelledAt: T0 + 650,
      completedAt: null,
    });
  });
});
