-- AlterTable
ALTER TABLE "SessionImport" ADD COLUMN     "processingAttempts" INTEGER NOT NULL DEFAULT 0;
