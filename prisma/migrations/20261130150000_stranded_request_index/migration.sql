-- The new index leads with batchId, so it serves every lookup the old one did.
-- DropIndex
DROP INDEX "AIProcessingRequest_batchId_idx";

-- CreateIndex
CREATE INDEX "AIProcessingRequest_batchId_processingStatus_requestedAt_idx" ON "AIProcessingRequest"("batchId", "processingStatus", "requestedAt");
