import { defineConfig } from "vitest/config"

// One project per kind of test, bottom layer first, so a run shows which layer broke:
// unit (pure), network (real sockets in one process), raft (in-memory Raft clusters),
// process (multi-process clusters).
const kinds = ["unit", "network", "raft", "process"] as const

export default defineConfig({
  test: {
    // Transport logs are useful when a test fails and noise when it passes.
    silent: "passed-only",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real endpoints and child processes on a 2-core machine: keep files from starving each other.
    fileParallelism: false,
    projects: kinds.map((kind) => ({
      extends: true,
      test: { name: kind, include: [`test/${kind}/**/*.test.ts`] }
    }))
  }
})
