import { randomBytes } from "node:crypto";
import type { Database } from "../../adapters/db/client.ts";

/**
 * A session as import processing leaves it: import PROCESSED, transcript stored as messages
 * ("Role: text" lines), AI_ANALYSIS and QUESTION_EXTRACTION pending. What the analysis tests
 * start from.
 */
export async function seedAnalysableSession(
  db: Database,
  companyId: string,
  lines: readonly string[],
  externalSessionId = `seed-${randomBytes(4).toString("hex")}`,
): Promise<string> {
  const imported = await db.sessionImport.create({
    data: {
      companyId,
      externalSessionId,
      startTimeRaw: "01.05.2025 10:00:00",
      endTimeRaw: "01.05.2025 10:05:00",
      status: "PROCESSED",
    },
  });
  const session = await db.session.create({
    data: {
      companyId,
      importId: imported.id,
      startTime: new Date("2025-05-01T10:00:00Z"),
      endTime: new Date("2025-05-01T10:05:00Z"),
      messages: {
        create: lines.map((line, order) => {
          const [role, ...rest] = line.split(": ");
          return { order, role: (role ?? "user").toLowerCase(), content: rest.join(": ") };
        }),
      },
      processingStatuses: {
        create: [
          { stage: "CSV_IMPORT", status: "COMPLETED" },
          { stage: "TRANSCRIPT_FETCH", status: "COMPLETED" },
          { stage: "SESSION_CREATION", status: "COMPLETED" },
          { stage: "AI_ANALYSIS", status: "PENDING" },
          { stage: "QUESTION_EXTRACTION", status: "PENDING" },
        ],
      },
    },
  });
  return session.id;
}
