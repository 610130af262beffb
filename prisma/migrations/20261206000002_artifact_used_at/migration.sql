-- When an artifact was last stored or referenced: garbage collection spares what was used within its grace period.
ALTER TABLE "Artifact" ADD COLUMN "usedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
