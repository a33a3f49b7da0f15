-- AlterTable
ALTER TABLE "Company" ADD COLUMN     "credentialOrigins" TEXT[] DEFAULT ARRAY[]::TEXT[];
