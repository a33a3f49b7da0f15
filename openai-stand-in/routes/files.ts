/**
 * /v1/files: upload (multipart), list with cursor pages, metadata, content and delete, over the
 * in-memory FileStore. Batch output and error files are stored there too and served the same way.
 */

import { Hono } from "hono";
import { cursorPage } from "../cursor-page.ts";
import { badRequest } from "../errors.ts";
import { readForm } from "../request-body.ts";
import type { StandInEnv, StandInState } from "../state.ts";
import type { FileWire } from "../types.ts";
import { idParam, searchParams } from "./params.ts";

const FILE_PURPOSES = new Set<string>(["assistants", "batch", "fine-tune", "vision", "user_data"]);

export function filesRoutes(state: StandInState): Hono<StandInEnv> {
  const files = state.files;
  const app = new Hono<StandInEnv>();

  app.post("/", async (c) => {
    const form = await readForm(c);
    const file = form.get("file");
    const purpose = form.get("purpose");
    if (!(file instanceof Blob)) {
      throw badRequest("Missing required parameter: 'file'.", "file", "missing_required_parameter");
    }
    if (typeof purpose !== "string" || !FILE_PURPOSES.has(purpose)) {
      throw badRequest(
        `Invalid value for 'purpose': expected one of ${[...FILE_PURPOSES].join(", ")}.`,
        "purpose",
        "invalid_value",
      );
    }
    const filename = "name" in file && typeof file.name === "string" ? file.name : "upload";
    const content = Buffer.from(await file.arrayBuffer());
    return c.json(files.store(content, filename, purpose as FileWire["purpose"]), 200);
  });

  app.get("/", (c) => {
    const query = searchParams(c);
    return c.json(cursorPage(files.list(query.get("purpose"), query.get("order")), query), 200);
  });

  app.get("/:id", (c) => c.json(files.get(idParam(c)).object, 200));

  app.delete("/:id", (c) => {
    const id = idParam(c);
    files.get(id);
    files.delete(id);
    return c.json({ id, object: "file", deleted: true }, 200);
  });

  // Streamed (chunked, no content-length), as the stand-in has always sent file content.
  app.get("/:id/content", (c) =>
    c.body(new Uint8Array(files.get(idParam(c)).content), 200, {
      "content-type": "application/octet-stream",
      "transfer-encoding": "chunked",
    }),
  );

  return app;
}
