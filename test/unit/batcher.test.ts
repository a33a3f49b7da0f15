import { describe, expect, it } from "vitest";
import { batched } from "../../workflows/batcher.ts";

/** The workflow-side batcher: calls made before its microtask runs share one call. */
describe("batched", () => {
  const recorder = () => {
    const calls: number[][] = [];
    const run = async (items: number[]) => {
      calls.push([...items]);
      return items.length;
    };
    return { calls, run };
  };

  it("gathers the calls made together into one, and every caller gets its result", async () => {
    const { calls, run } = recorder();
    const add = batched(run, 10);
    const results = await Promise.all([add(1), add(2), add(3)]);
    expect(calls).toEqual([[1, 2, 3]]);
    expect(results).toEqual([3, 3, 3]);
  });

  it("starts a new call once the first has closed", async () => {
    const { calls, run } = recorder();
    const add = batched(run, 10);
    await add(1);
    await Promise.all([add(2), add(3)]);
    expect(calls).toEqual([[1], [2, 3]]);
  });

  it("never puts more than maxSize items in one call", async () => {
    const { calls, run } = recorder();
    const add = batched(run, 2);
    await Promise.all([1, 2, 3, 4, 5].map(add));
    expect(calls).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("gathers callers that reach it from the same depth of awaits, as activity results do", async () => {
    const { calls, run } = recorder();
    const add = batched(run, 10);
    // Three "activities" ending in the same activation: each caller awaits, then adds.
    const ended = Promise.resolve();
    await Promise.all(
      [1, 2, 3].map(async (n) => {
        await ended;
        return add(n);
      }),
    );
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it("passes a failure to every caller of the batch", async () => {
    const add = batched(async () => {
      throw new Error("database down");
    }, 10);
    const settled = await Promise.allSettled([add(1), add(2)]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
  });
});
