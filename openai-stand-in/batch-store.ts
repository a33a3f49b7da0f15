/**
 * The stand-in's batches, in memory: creating one from an uploaded input file (validating and
 * running every line at once, in a deterministic shuffle), reading one as of now through its
 * timeline, cancelling, and settling: the first time a batch is seen in a terminal state its
 * output and error files are written and the matching counter goes up (evaluation is lazy).
 */

import type { Batch } from "openai/resources/batches";
import {
  expiredLine,
  isSuccess,
  jsonLine,
  parseBatchInput,
  runBatchLine,
  writtenLine,
} from "./batch-jsonl.ts";
import { type BatchRecord, batchObject } from "./batch-object.ts";
import {
  CANCELLABLE_STATUSES,
  TERMINAL_STATUSES,
  type Timeline,
  timelineAt,
} from "./batch-timeline.ts";
import type { Behaviour } from "./behaviour.ts";
import { badRequest, notFound } from "./errors.ts";
import type { FileStore, StoredFile } from "./file-store.ts";
import { deterministicShuffle, hashString, randomId } from "./random.ts";
import type { BatchObject, StandInStats } from "./types.ts";

export class BatchStore {
  private readonly batches = new Map<string, BatchRecord>();

  constructor(
    private readonly files: FileStore,
    private readonly counters: StandInStats,
  ) {}

  /** Stores a new batch over `input` and returns it as of now. */
  create(
    input: StoredFile,
    endpoint: string,
    completionWindow: string,
    metadata: Record<string, string> | null,
    behaviour: Behaviour,
  ): BatchObject {
    const text = input.content.toString("utf8");
    const { lines, errors } = parseBatchInput(text, endpoint);
    const runs = errors.length === 0 && behaviour.batchOutcome !== "failed";
    const results = runs ? lines.map((line) => runBatchLine(line, behaviour)) : [];
    const batch: BatchRecord = {
      id: `batch_${randomId(24)}`,
      createdAtMs: Date.now(),
      inputFileId: input.object.id,
      endpoint,
      completionWindow,
      metadata,
      timings: { ...behaviour.batch },
      outcome: behaviour.batchOutcome,
      validationErrors: errors,
      results: deterministicShuffle(results, hashString(text)),
      cancelRequestedAtMs: null,
      settled: null,
    };
    this.batches.set(batch.id, batch);
    this.counters.batchesCreated++;
    return this.observe(batch);
  }

  retrieve(id: string): BatchObject {
    return this.observe(this.batch(id));
  }

  /** Newest first. */
  list(): BatchObject[] {
    return [...this.batches.values()].reverse().map((batch) => this.observe(batch));
  }

  /** Asks for a cancel (once; asking again is a no-op); only validating or running batches. */
  cancel(id: string): BatchObject {
    const batch = this.batch(id);
    const now = Date.now();
    const status = timelineAt(batch, now).status;
    if (batch.cancelRequestedAtMs === null) {
      if (!CANCELLABLE_STATUSES.has(status)) {
        throw badRequest(`Cannot cancel a batch with status '${status}'.`, null, "invalid_state");
      }
      batch.cancelRequestedAtMs = now;
    }
    return this.observe(batch);
  }

  lose(id: string): boolean {
    return this.batches.delete(id);
  }

  private batch(id: string): BatchRecord {
    const batch = this.batches.get(id);
    if (!batch) throw notFound(`No batch found with id '${id}'.`, "batch_id");
    return batch;
  }

  /** The batch as of now; writes its output files the first time it is seen finished. */
  private observe(batch: BatchRecord): BatchObject {
    const timeline = timelineAt(batch, Date.now());
    if (TERMINAL_STATUSES.has(timeline.status) && batch.settled === null) {
      this.settle(batch, timeline);
    }
    return batchObject(batch, timeline);
  }

  private settle(batch: BatchRecord, timeline: Timeline): void {
    const executed = batch.results.slice(0, timeline.executed);
    const output = executed.filter(isSuccess).map(writtenLine);
    const errors = executed.filter((result) => !isSuccess(result)).map(writtenLine);
    if (timeline.status === "expired") {
      errors.push(...batch.results.slice(timeline.executed).map(expiredLine).map(jsonLine));
    }
    const store = (lines: string[], kind: string) =>
      lines.length === 0
        ? null
        : this.files.store(Buffer.from(lines.join("")), `${batch.id}_${kind}.jsonl`, "batch_output")
            .id;
    batch.settled = { outputFileId: store(output, "output"), errorFileId: store(errors, "error") };
    this.countSettled(timeline.status);
  }

  private countSettled(status: Batch["status"]): void {
    if (status === "completed") this.counters.batchesCompleted++;
    if (status === "failed") this.counters.batchesFailed++;
    if (status === "expired") this.counters.batchesExpired++;
    if (status === "cancelled") this.counters.batchesCancelled++;
  }
}
