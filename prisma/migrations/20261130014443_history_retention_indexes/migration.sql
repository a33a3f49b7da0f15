-- CreateIndex
CREATE INDEX "AlertNotification_createdAt_idx" ON "AlertNotification"("createdAt");

-- CreateIndex
CREATE INDEX "SchedulerAction_createdAt_idx" ON "SchedulerAction"("createdAt");

-- CreateIndex
CREATE INDEX "SchedulerRun_finishedAt_idx" ON "SchedulerRun"("finishedAt");
