/** What the migration tooling throws: a refused deploy, a bad name, an engine or SQL failure. */
export class MigrationError extends Error {
  override name = "MigrationError";
}
