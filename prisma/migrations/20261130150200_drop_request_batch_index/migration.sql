-- The index of the previous migration leads with batchId and serves every lookup this one did.
DROP INDEX CONCURRENTLY "AIProcessingRequest_batchId_idx";
