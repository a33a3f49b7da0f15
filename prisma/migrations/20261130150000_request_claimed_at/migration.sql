-- A constant default: PostgreSQL adds the column without rewriting the table.
-- AlterTable
ALTER TABLE "AIProcessingRequest" ADD COLUMN     "claimedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
