-- AlterTable: the submission outbox. Jobs submitted before it were enqueued with their row.
ALTER TABLE "Job" ADD COLUMN     "enqueuedAt" TIMESTAMP(3);
UPDATE "Job" SET "enqueuedAt" = "createdAt";
