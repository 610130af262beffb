-- AlterTable
ALTER TABLE "Model" ADD COLUMN     "bytes" BIGINT NOT NULL,
ADD COLUMN     "files" JSONB NOT NULL,
ADD COLUMN     "manifestSha256" TEXT NOT NULL,
ADD COLUMN     "tokenizerName" TEXT NOT NULL,
ADD COLUMN     "tokenizerSha256" TEXT NOT NULL;

-- AlterTable
ALTER TABLE "Dataset" ADD COLUMN     "bytes" BIGINT NOT NULL,
ADD COLUMN     "format" TEXT NOT NULL;

-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "best" JSONB,
ADD COLUMN     "cancelRequested" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "finishedAt" TIMESTAMP(3),
ADD COLUMN     "startedAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "Calibration" DROP COLUMN "calibrationSha256",
DROP COLUMN "clusters",
ADD COLUMN     "heldOutClustersSha256" TEXT NOT NULL,
ADD COLUMN     "influence" TEXT NOT NULL,
ADD COLUMN     "poolSha256" TEXT NOT NULL,
ADD COLUMN     "searchClustersSha256" TEXT NOT NULL,
ADD COLUMN     "searchSha256" TEXT NOT NULL,
ADD COLUMN     "set" JSONB NOT NULL;

-- AlterTable
ALTER TABLE "Generation" ALTER COLUMN "record" SET DATA TYPE TEXT USING "record"::text,
ALTER COLUMN "state" SET DATA TYPE TEXT USING "state"::text;

-- AlterTable
ALTER TABLE "Result" ADD COLUMN     "modelManifestSha256" TEXT NOT NULL,
ALTER COLUMN "report" SET DATA TYPE TEXT USING "report"::text;

