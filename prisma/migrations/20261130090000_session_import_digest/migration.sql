-- Repeated session ids within a CSV file are told apart in the database instead of in the
-- worker's memory: a digest of each stored row's values. Nullable, no default: adding it
-- rewrites no rows; rows stored before it count a repeat as a duplicate, as an identical one.

-- AlterTable
ALTER TABLE "SessionImport" ADD COLUMN     "sourceDigest" DOUBLE PRECISION;
