-- A job with a quality–speed front has one result per target: the front's other points, each with its model.
ALTER TABLE "Result" ADD COLUMN     "points" JSONB NOT NULL DEFAULT '[]';
