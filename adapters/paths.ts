import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where the running code lives. From the TypeScript sources (tsx, vitest) the code root is the
 * project root; from the compiled build (`npm run build`, `node dist/...`) it is `dist/`, one
 * level below the project root that holds node_modules/ and prisma/.
 */
export const COMPILED = import.meta.url.endsWith(".js");
/** `.ts` when running the sources, `.js` when running the compiled build. */
export const CODE_EXTENSION = COMPILED ? ".js" : ".ts";
/** The folder holding workflows/, lib/, workers/, ... as they are run (sources or dist/). */
export const CODE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The folder holding package.json, node_modules/ and prisma/. */
export const PROJECT_ROOT = COMPILED ? join(CODE_ROOT, "..") : CODE_ROOT;
