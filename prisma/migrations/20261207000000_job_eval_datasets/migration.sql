-- The datasets a job evaluates on besides its own (out of domain): held-out perplexity for each in the result.
ALTER TABLE "Job" ADD COLUMN     "evalDatasetIds" UUID[] DEFAULT ARRAY[]::UUID[];
