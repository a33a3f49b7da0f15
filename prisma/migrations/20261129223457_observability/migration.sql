-- CreateTable
CREATE TABLE "CompanyImportHealth" (
    "companyId" UUID NOT NULL,
    "lastRunId" TEXT NOT NULL,
    "lastAttemptAt" TIMESTAMP(3) NOT NULL,
    "lastSuccessAt" TIMESTAMP(3),
    "lastFailureAt" TIMESTAMP(3),
    "consecutiveFailures" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "CompanyImportHealth_pkey" PRIMARY KEY ("companyId")
);

-- CreateTable
CREATE TABLE "SchedulerAlertState" (
    "scheduleId" TEXT NOT NULL,
    "schedulerId" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "reason" TEXT,
    "changedAt" TIMESTAMP(3) NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SchedulerAlertState_pkey" PRIMARY KEY ("scheduleId")
);

-- CreateTable
CREATE TABLE "AlertNotification" (
    "id" UUID NOT NULL,
    "scheduleId" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "leaseUntil" TIMESTAMP(3),
    "deliveredAt" TIMESTAMP(3),
    "failedAt" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AlertNotification_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "CompanyImportHealth_consecutiveFailures_companyId_idx" ON "CompanyImportHealth"("consecutiveFailures", "companyId");

-- CreateIndex
CREATE INDEX "AlertNotification_deliveredAt_failedAt_nextAttemptAt_idx" ON "AlertNotification"("deliveredAt", "failedAt", "nextAttemptAt");

-- AddForeignKey
ALTER TABLE "CompanyImportHealth" ADD CONSTRAINT "CompanyImportHealth_companyId_fkey" FOREIGN KEY ("companyId") REFERENCES "Company"("id") ON DELETE CASCADE ON UPDATE CASCADE;
