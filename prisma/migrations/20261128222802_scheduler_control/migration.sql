-- CreateTable
CREATE TABLE "SchedulerSetting" (
    "scheduleId" TEXT NOT NULL,
    "schedulerId" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "note" TEXT,
    "updatedBy" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SchedulerSetting_pkey" PRIMARY KEY ("scheduleId")
);

-- CreateTable
CREATE TABLE "SchedulerAction" (
    "id" UUID NOT NULL,
    "schedulerId" TEXT NOT NULL,
    "scheduleId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "note" TEXT,
    "details" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SchedulerAction_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "SchedulerAction_scheduleId_createdAt_idx" ON "SchedulerAction"("scheduleId", "createdAt");
