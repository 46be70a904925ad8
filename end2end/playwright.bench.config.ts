// Dashboard benchmark (numbers, not pass/fail): `scripts/e2e.sh --config playwright.bench.config.ts`.
import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

export default defineConfig({ ...base, testDir: "./bench", testMatch: "*.bench.ts", timeout: 600_000, reporter: [["list"]] });
