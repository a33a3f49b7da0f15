/**
 * The stand-in's file storage, in memory: uploads and the output/error files batches write when
 * they settle. Every stored file counts in `filesStored`; a lost file (loseFile) answers 404 like
 * one OpenAI no longer has.
 */

import { notFound } from "./errors.ts";
import { randomId, seconds } from "./random.ts";
import type { FileWire, StandInStats } from "./types.ts";

export interface StoredFile {
  object: FileWire;
  content: Buffer;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();

  constructor(private readonly counters: StandInStats) {}

  store(content: Buffer, filename: string, purpose: FileWire["purpose"]): FileWire {
    const object: FileWire = {
      id: `file-${randomId(22)}`,
      object: "file",
      bytes: content.length,
      created_at: seconds(Date.now()),
      expires_at: null,
      filename,
      purpose,
      status: "processed",
      status_details: null,
    };
    this.files.set(object.id, { object, content });
    this.counters.filesStored++;
    return object;
  }

  /** The file, or undefined (for callers that answer a missing file their own way). */
  find(id: string): StoredFile | undefined {
    return this.files.get(id);
  }

  /** The file, or OpenAI's 404 for it. */
  get(id: string): StoredFile {
    const stored = this.files.get(id);
    if (!stored) throw notFound(`No such File object: ${id}`);
    return stored;
  }

  delete(id: string): boolean {
    return this.files.delete(id);
  }

  /** Newest first unless `order` is "asc", optionally of one purpose only. */
  list(purpose: string | null, order: string | null): FileWire[] {
    const files = [...this.files.values()]
      .map((stored) => stored.object)
      .filter((file) => purpose === null || file.purpose === purpose);
    return order === "asc" ? files : files.reverse();
  }
}
