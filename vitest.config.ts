import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Transport logs are useful when a test fails and noise when it passes.
    silent: "passed-only",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real endpoints and child processes on a 2-core machine: keep files from starving each other.
    fileParallelism: false
  }
})
