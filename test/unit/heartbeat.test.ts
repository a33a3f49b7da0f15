import { Context } from "@temporalio/activity";
import { CancelledFailure } from "@temporalio/common";
import { MockActivityEnvironment } from "@temporalio/testing";
import { describe, expect, it } from "vitest";
import { heartbeatWhileRunning } from "../../activities/heartbeat.ts";

/**
 * The heartbeat ticker of long activities, in the SDK's mock activity context: it beats with the
 * latest details at a third of the heartbeat timeout (or the cap), never without a timeout, and
 * stops when the attempt ends, cancelled or not.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An activity that works for `ms`, reporting `progress` through the ticker. */
function longActivity(ms: number, maxIntervalMs?: number) {
  return async (): Promise<number> => {
    const ctx = Context.current();
    let progress = 0;
    const stop = heartbeatWhileRunning(ctx, () => ({ progress }), { maxIntervalMs });
    try {
      const started = Date.now();
      while (Date.now() - started < ms) {
        progress += 1;
        await Promise.race([sleep(20), ctx.cancelled]);
      }
      return progress;
    } finally {
      stop();
    }
  };
}

function recordBeats(env: MockActivityEnvironment) {
  const beats: { at: number; details: unknown }[] = [];
  env.on("heartbeat", (details: unknown) => beats.push({ at: Date.now(), details }));
  return beats;
}

describe("heartbeatWhileRunning (MockActivityEnvironment)", () => {
  it("beats every third of the heartbeat timeout with the latest details, and stops at the end", async () => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 900 });
    const beats = recordBeats(env);
    const started = Date.now();
    const progress = (await env.run(longActivity(1_000))) as number;
    // 1,000 ms at one beat per 300 ms.
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats.length).toBeLessThanOrEqual(4);
    expect(beats[0]?.at ?? 0).toBeGreaterThanOrEqual(started + 250);
    const seen = beats.map((b) => (b.details as { progress: number }).progress);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1) ?? 0).toBeLessThanOrEqual(progress);
    const count = beats.length;
    await sleep(700);
    expect(beats.length, "no beat after the activity returned").toBe(count);
  });

  it("beats at the cap when one is given (live progress), never faster than 200 ms", async () => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 });
    const beats = recordBeats(env);
    await env.run(longActivity(1_000, 250));
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(beats.length).toBeLessThanOrEqual(5);
    const fast = new MockActivityEnvironment({ heartbeatTimeoutMs: 60_000 });
    const fastBeats = recordBeats(fast);
    await fast.run(longActivity(500, 10));
    expect(fastBeats.length).toBeLessThanOrEqual(3);
  });

  it("does nothing without a heartbeat timeout", async () => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: undefined });
    const beats = recordBeats(env);
    await env.run(longActivity(700));
    expect(beats).toEqual([]);
  });

  it("a cancelled attempt ends with CancelledFailure and its ticker stops", async () => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 600 });
    const beats = recordBeats(env);
    const running = env.run(longActivity(60_000));
    await sleep(500);
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    const count = beats.length;
    expect(count).toBeGreaterThanOrEqual(1);
    await sleep(600);
    expect(beats.length, "no beat after cancellation").toBe(count);
  });
});
