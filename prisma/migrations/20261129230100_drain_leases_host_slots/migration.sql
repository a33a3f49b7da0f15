-- AlterTable
ALTER TABLE "SchedulerRun" ADD COLUMN     "executions" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "SessionImport" ADD COLUMN     "leaseHolder" TEXT,
ADD COLUMN     "leaseUntil" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "FetchHostSlot" (
    "host" TEXT NOT NULL,
    "slot" INTEGER NOT NULL,
    "holder" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "FetchHostSlot_pkey" PRIMARY KEY ("host","slot")
);

-- CreateIndex
CREATE INDEX "SessionImport_status_companyId_createdAt_id_idx" ON "SessionImport"("status", "companyId", "createdAt", "id");
