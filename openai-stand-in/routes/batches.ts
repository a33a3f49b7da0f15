/**
 * /v1/batches: create (validating the request, then the input file), retrieve, list with cursor
 * pages, and cancel, over the in-memory BatchStore. How a batch moves through its states lives
 * in batch-timeline.ts; this module only checks requests and renders answers.
 */

import { Hono } from "hono";
import { cursorPage } from "../cursor-page.ts";
import { badRequest } from "../errors.ts";
import { isRecord } from "../json-values.ts";
import { readJson } from "../request-body.ts";
import type { StandInEnv, StandInState } from "../state.ts";
import { idParam, searchParams } from "./params.ts";

function parseMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  const valid =
    isRecord(value) &&
    Object.keys(value).length <= 16 &&
    Object.values(value).every((entry) => typeof entry === "string" && entry.length <= 512);
  if (!valid) {
    throw badRequest(
      "Invalid 'metadata': at most 16 string values of up to 512 characters.",
      "metadata",
    );
  }
  return value as Record<string, string>;
}

export function batchesRoutes(state: StandInState): Hono<StandInEnv> {
  const batches = state.batches;
  const app = new Hono<StandInEnv>();

  app.post("/", async (c) => {
    const body = await readJson(c);
    if (!isRecord(body)) throw badRequest("The request body must be a JSON object.");
    const { input_file_id: inputFileId, endpoint, completion_window: window } = body;
    if (typeof inputFileId !== "string" || inputFileId === "") {
      throw badRequest(
        "Missing required parameter: 'input_file_id'.",
        "input_file_id",
        "missing_required_parameter",
      );
    }
    if (endpoint !== "/v1/chat/completions") {
      throw badRequest(
        "The stand-in only supports the endpoint /v1/chat/completions.",
        "endpoint",
        "invalid_value",
      );
    }
    if (window !== "24h") {
      throw badRequest(
        "Invalid 'completion_window': only '24h' is supported.",
        "completion_window",
        "invalid_value",
      );
    }
    const metadata = parseMetadata(body.metadata);
    const input = state.files.find(inputFileId);
    if (!input) {
      throw badRequest(`No file found with id '${inputFileId}'.`, "input_file_id", "invalid_value");
    }
    if (input.object.purpose !== "batch") {
      throw badRequest(
        "The input file must have purpose 'batch'.",
        "input_file_id",
        "invalid_value",
      );
    }
    return c.json(batches.create(input, endpoint, window, metadata, state.behaviour), 200);
  });

  app.get("/", (c) => c.json(cursorPage(batches.list(), searchParams(c)), 200));

  app.get("/:id", (c) => c.json(batches.retrieve(idParam(c)), 200));

  app.post("/:id/cancel", (c) => c.json(batches.cancel(idParam(c)), 200));

  return app;
}
