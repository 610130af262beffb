-- AlterTable
ALTER TABLE "Model" ADD COLUMN     "tokenizerConfigSha256" TEXT;
