import { ApplicationFailure, Context } from "@temporalio/activity";
import { pgPoolOf } from "../adapters/db/client.ts";
import { hostBusyFailure, SourceHostBusyError } from "../adapters/host-slots.ts";
import { openSource } from "../adapters/http-source.ts";
import { describeUrl } from "../adapters/source-url.ts";
import { CsvFileError, readSessionCsvBatches } from "../domain/csv-rows.ts";
import {
  CSV_FILE_REJECTED,
  CSV_IMPORT_ERROR,
  CSV_SOURCE_REJECTED,
  CSV_SOURCE_UNAVAILABLE,
} from "../domain/failure-types.ts";
import { boundText, PermanentSourceError, TransientSourceError } from "../domain/source-errors.ts";
import type { ActivityDeps } from "./deps.ts";
import { heartbeatWhileRunning } from "./heartbeat.ts";
import { SessionImportWriter } from "./session-import-insert.ts";

/**
 * Rows per chunk (one COPY into staging and one INSERT, one transaction, one committed mark):
 * large enough that the per-chunk round trips vanish, small enough to hold in memory twice.
 */
const CHUNK_ROWS = 10_000;
/** A chunk of long rows closes earlier: two chunks are held in memory. */
const CHUNK_MAX_BYTES = 8 * 1024 * 1024;
/** A slow source still commits (and so heartbeats progress) at least this often. */
const CHUNK_MAX_AGE_MS = 1_000;
/** Rejections kept per company in the run record; the count is always exact. */
const MAX_REPORTED_REJECTIONS = 20;

export interface CompanyRef {
  id: string;
  name: string;
}

export interface ListCompaniesInput {
  region?: string | undefined;
  afterId?: string | undefined;
  limit: number;
}

export interface CsvImportCounts {
  rowsRead: number;
  inserted: number;
  duplicates: number;
  rejected: number;
  rejections: { line: number; reason: string }[];
}

export interface CompanyImportResult extends CsvImportCounts {
  companyId: string;
  companyName: string;
  status: "imported" | "failed" | "skipped";
  error?: string;
  durationMs: number;
}

/** Heartbeat details: lets a retried attempt skip what an earlier attempt already committed. */
interface ImportProgress {
  recordsDone: number;
  counts: CsvImportCounts;
  /** Lets the run's progress tell this import's rows from the finished companies' totals. */
  companyId?: string;
}

/**
 * Counts a rejected row and keeps the reasons of the first MAX_REPORTED_REJECTIONS lines of the
 * file: conflicts arrive when their chunk is stored, after later lines were read.
 */
function addRejection(counts: CsvImportCounts, line: number, reason: string): void {
  counts.rejected += 1;
  const list = counts.rejections;
  if (list.length >= MAX_REPORTED_REJECTIONS && line > (list.at(-1)?.line ?? 0)) return;
  let at = list.length;
  while (at > 0 && (list[at - 1]?.line ?? 0) > line) at -= 1;
  list.splice(at, 0, { line, reason: boundText(reason) });
  if (list.length > MAX_REPORTED_REJECTIONS) list.pop();
}

export function emptyCounts(): CsvImportCounts {
  return { rowsRead: 0, inserted: 0, duplicates: 0, rejected: 0, rejections: [] };
}

export function createCsvImportActivities({ db, log, config, hostLimiter }: ActivityDeps) {
  /** One page of ACTIVE companies (keyset order by id), honouring the region filter. */
  async function listCsvImportCompanies(input: ListCompaniesInput): Promise<CompanyRef[]> {
    return db.company.findMany({
      where: {
        status: "ACTIVE",
        ...(input.region ? { region: input.region } : {}),
        ...(input.afterId ? { id: { gt: input.afterId } } : {}),
      },
      orderBy: { id: "asc" },
      take: input.limit,
      select: { id: true, name: true },
    });
  }

  /** ACTIVE companies a run will visit: the total of its progress, counted once per run. */
  async function countCsvImportCompanies(input: { region?: string | undefined }): Promise<number> {
    return db.company.count({
      where: { status: "ACTIVE", ...(input.region ? { region: input.region } : {}) },
    });
  }

  /**
   * Streams one company's CSV into SessionImport rows. Safe to run twice: the unique key
   * (companyId, externalSessionId) turns a re-read row into a counted duplicate.
   */
  async function importCompanyCsv(companyId: string): Promise<CompanyImportResult> {
    const started = Date.now();
    const ctx = Context.current();
    const company = await db.company.findUnique({ where: { id: companyId } });
    if (company?.status !== "ACTIVE") {
      return {
        companyId,
        companyName: company?.name ?? "(deleted)",
        status: "skipped",
        error: company ? `company is ${company.status}` : "company no longer exists",
        durationMs: Date.now() - started,
        ...emptyCounts(),
      };
    }

    const resumed = ctx.info.heartbeatDetails as ImportProgress | undefined;
    const counts = resumed?.counts ?? emptyCounts();
    const skipUntil = resumed?.recordsDone ?? 0;
    let recordsSeen = 0;

    // What is committed so far; heartbeats carry only this, never rows still in memory.
    let committed: ImportProgress = {
      recordsDone: skipUntil,
      counts: structuredClone(counts),
      companyId,
    };
    const writer = new SessionImportWriter(pgPoolOf(db), companyId);
    let chunkStarted = Date.now();
    // The mark is taken when the chunk closes (the parse moves on while it is written) and
    // becomes the committed one only once the chunk's insert succeeded.
    const flush = async () => {
      const mark = { recordsDone: recordsSeen, counts: structuredClone(counts), companyId };
      await writer.flush(({ inserted, conflicts }, rows) => {
        counts.inserted += inserted;
        counts.duplicates += rows - inserted - conflicts.length;
        mark.counts.inserted = counts.inserted;
        mark.counts.duplicates = counts.duplicates;
        // Conflicts are known once their chunk is stored; they join the rejections then.
        for (const { line, reason } of conflicts) {
          addRejection(counts, line, reason);
          addRejection(mark.counts, line, reason);
        }
        committed = mark;
        ctx.heartbeat(committed);
      });
      chunkStarted = Date.now();
    };
    // A slow source still heartbeats, so the activity is not mistaken for a dead worker; at
    // least every 5 s, as the heartbeat carries the run's live progress.
    const stopBeating = heartbeatWhileRunning(ctx, () => committed, { maxIntervalMs: 5_000 });

    const credentials =
      company.csvUsername && company.csvPassword
        ? { username: company.csvUsername, password: company.csvPassword }
        : undefined;
    // Leave a little of the activity's budget so our own timeout, with its clear message, fires first.
    const timeoutMs = Math.max(1_000, config.csvImport.timeoutMs - 2_000);

    try {
      const source = await openSource({
        url: company.csvUrl,
        credentials,
        timeoutMs,
        maxBytes: config.csvImport.maxBytes,
        allowedHosts: config.fetchAllowedHosts,
        allowPrivateNetworks: config.fetchAllowPrivateNetworks,
        minBytesPerSecond: config.fetchMinBytesPerSecond,
        hostLimiter,
        purpose: "csv",
        signal: ctx.cancellationSignal,
        accept: "text/csv, text/plain;q=0.9, */*;q=0.1",
      });
      if (/^text\/html\b/i.test(source.contentType)) {
        source.body.destroy();
        throw new PermanentSourceError(
          `expected CSV but the server sent an HTML page (content-type ${source.contentType})`,
        );
      }

      const batches = readSessionCsvBatches(source.body, {
        timeZone: config.importProcessing.timeZone,
      });
      for await (const batch of batches) {
        for (const event of batch) {
          recordsSeen += 1;
          if (recordsSeen <= skipUntil) continue;
          counts.rowsRead += 1;
          if (event.kind === "row") writer.add(event.row);
          else addRejection(counts, event.line, event.reason);
          if (
            writer.rows >= CHUNK_ROWS ||
            writer.bytes >= CHUNK_MAX_BYTES ||
            Date.now() - chunkStarted >= CHUNK_MAX_AGE_MS
          ) {
            await flush();
          }
        }
      }
      await flush();
      await writer.settled();
    } catch (error) {
      // Keep what was committed; report the failure with the counts so far.
      await flush().catch(() => undefined);
      await writer.settled().catch(() => undefined);
      throw importFailure(error, company.csvUrl, counts);
    } finally {
      stopBeating();
    }

    log.info(
      {
        companyId,
        rowsRead: counts.rowsRead,
        inserted: counts.inserted,
        rejected: counts.rejected,
      },
      "csv import finished",
    );
    return {
      companyId,
      companyName: company.name,
      status: "imported",
      durationMs: Date.now() - started,
      ...counts,
    };
  }

  return { listCsvImportCompanies, countCsvImportCompanies, importCompanyCsv };
}

/** Maps a failure to a Temporal failure: permanent ones are not retried; counts ride along. */
function importFailure(error: unknown, url: string, counts: CsvImportCounts): ApplicationFailure {
  if (error instanceof SourceHostBusyError) return hostBusyFailure(error);
  const where = describeUrl(url);
  const reason = (error: unknown) =>
    boundText(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  if (error instanceof CsvFileError) {
    return ApplicationFailure.create({
      type: CSV_FILE_REJECTED,
      message: reason(error),
      nonRetryable: true,
      details: [counts],
    });
  }
  if (error instanceof PermanentSourceError) {
    return ApplicationFailure.create({
      type: CSV_SOURCE_REJECTED,
      message: reason(error),
      nonRetryable: true,
      details: [counts],
    });
  }
  if (error instanceof TransientSourceError) {
    return ApplicationFailure.create({
      type: CSV_SOURCE_UNAVAILABLE,
      message: reason(error),
      details: [counts],
    });
  }
  return ApplicationFailure.create({
    type: CSV_IMPORT_ERROR,
    message: reason(error),
    details: [counts],
  });
}
