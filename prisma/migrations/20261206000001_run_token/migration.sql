-- AlterTable: the fencing token of the run that holds a job.
ALTER TABLE "Job" ADD COLUMN     "runToken" TEXT;
