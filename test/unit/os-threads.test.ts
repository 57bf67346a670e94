import { describe, expect, it } from "@effect/vitest"
import { chrtArguments, parseTaskStat, SCHED_BATCH, threadsOf } from "../../src/os/threads.ts"

describe("this process's threads", () => {
  it("reads a thread's name and policy from its stat line, whatever the name holds", () => {
    const rest = Array.from({ length: 50 }, (_, i) => (i === 41 - 3 ? String(SCHED_BATCH) : "0")).join(" ")
    expect(parseTaskStat(`4242 (tokio-rt-worker) ${rest}`)).toEqual({ comm: "tokio-rt-worker", policy: SCHED_BATCH })
    expect(parseTaskStat(`4242 (a (b) c) ${rest}`)).toEqual({ comm: "a (b) c", policy: SCHED_BATCH })
    expect(parseTaskStat("4242 tokio")).toBeUndefined()
  })

  it.skipIf(process.platform !== "linux")("lists this process's threads, the main one among them", () => {
    expect(threadsOf().map((t) => t.tid)).toContain(String(process.pid))
  })

  it("asks chrt for one thread or for every thread of a process", () => {
    expect(chrtArguments("batch", 42)).toEqual(["-b", "-p", "0", "42"])
    expect(chrtArguments("other", "42", true)).toEqual(["-a", "-o", "-p", "0", "42"])
  })
})
