import type OpenAI from "openai";
import type { Config } from "../lib/config.ts";
import type { Database } from "../lib/db.ts";
import type { Logger } from "../lib/logger.ts";

/** What activities need from the outside world; tests hand in real local services. */
export interface ActivityDeps {
  db: Database;
  log: Logger;
  config: Config;
  /** The real SDK; pointed at OpenAI or at the local stand-in by OPENAI_BASE_URL. */
  openai: OpenAI;
}
