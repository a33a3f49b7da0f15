-- CreateIndex
CREATE INDEX "AIProcessingRequest_processingStatus_requestedAt_idx" ON "AIProcessingRequest"("processingStatus", "requestedAt");
