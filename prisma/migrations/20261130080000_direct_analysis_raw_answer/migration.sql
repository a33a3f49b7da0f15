-- AlterTable
ALTER TABLE "AIProcessingRequest" ADD COLUMN     "rawAnswer" JSONB;
