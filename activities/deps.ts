import type OpenAI from "openai";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { HostLimiter } from "../adapters/host-slots.ts";
import type { Logger } from "../adapters/logger.ts";

/** What activities need from the outside world; tests hand in real local services. */
export interface ActivityDeps {
  db: Database;
  log: Logger;
  config: Config;
  /** The real SDK; pointed at OpenAI or at the local stand-in by OPENAI_BASE_URL. */
  openai: OpenAI;
  /** FETCH_MAX_PER_HOST across every replica (default: from configuration, in PostgreSQL). */
  hostLimiter?: HostLimiter;
}
