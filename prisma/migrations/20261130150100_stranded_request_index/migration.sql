-- CONCURRENTLY, alone in its migration (it cannot run in a transaction): writes to this large
-- table go on while the index is built.
CREATE INDEX CONCURRENTLY "AIProcessingRequest_batchId_processingStatus_claimedAt_idx" ON "AIProcessingRequest"("batchId", "processingStatus", "claimedAt");
