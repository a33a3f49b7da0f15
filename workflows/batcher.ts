/**
 * Gathers the calls a workflow makes in one activation into one call: each caller awaits the
 * shared result. An activation resolves every activity that ended since the last one before the
 * workflow's code runs on, so under load many model calls end together and their applies become
 * one activity; with one call at a time it is one activity per call, as without the batcher.
 *
 * Deterministic: a batch closes one microtask after its first call, so it holds exactly the
 * calls made by the code the same activation runs, which a replay runs again in the same order.
 * No timer is involved, so batching adds nothing to the history.
 */
export function batched<T, R>(
  run: (items: T[]) => Promise<R>,
  maxSize: number,
): (item: T) => Promise<R> {
  let open: T[] | undefined;
  let openResult: Promise<R> | undefined;
  return (item) => {
    if (open && openResult && open.length < maxSize) {
      open.push(item);
      return openResult;
    }
    const items = [item];
    open = items;
    openResult = Promise.resolve().then(() => {
      if (open === items) open = undefined;
      return run(items);
    });
    return openResult;
  };
}
