import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeIrohEndpoint } from "../../src/iroh/endpoint.ts"
import { bindingThreads } from "../../src/iroh/thread-policy.ts"
import { SCHED_BATCH } from "../../src/os/threads.ts"

describe("the binding's thread policy", () => {
  it.live.skipIf(process.platform !== "linux")("runs the binding's Tokio threads as SCHED_BATCH once an endpoint is bound", () =>
    Effect.gen(function*() {
      yield* makeIrohEndpoint({ bindAddress: "127.0.0.1:0", relayMode: { _tag: "disabled" }, workerThread: false }).pipe(Effect.orDie)
      const threads = bindingThreads()
      expect(threads.length).toBeGreaterThan(0)
      expect(threads.every((t) => t.policy === SCHED_BATCH)).toBe(true)
    }).pipe(Effect.scoped))
})
