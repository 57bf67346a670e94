import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeIrohEndpoint } from "../../src/iroh/endpoint.ts"
import { bindingThreads, parseTaskStat } from "../../src/iroh/thread-policy.ts"

describe("the binding's thread policy", () => {
  it("reads a thread's name and policy from its stat line, whatever the name holds", () => {
    const rest = Array.from({ length: 50 }, (_, i) => (i === 41 - 3 ? "3" : "0")).join(" ")
    expect(parseTaskStat(`4242 (tokio-rt-worker) ${rest}`)).toEqual({ comm: "tokio-rt-worker", policy: 3 })
    expect(parseTaskStat(`4242 (a (b) c) ${rest}`)).toEqual({ comm: "a (b) c", policy: 3 })
    expect(parseTaskStat("4242 tokio")).toBeUndefined()
  })

  it.live.skipIf(process.platform !== "linux")("runs the binding's Tokio threads as SCHED_BATCH once an endpoint is bound", () =>
    Effect.gen(function*() {
      yield* makeIrohEndpoint({ bindAddress: "127.0.0.1:0", relayMode: { _tag: "disabled" }, workerThread: false }).pipe(Effect.orDie)
      const threads = bindingThreads()
      expect(threads.length).toBeGreaterThan(0)
      expect(threads.every((t) => t.policy === 3)).toBe(true)
    }).pipe(Effect.scoped))
})
