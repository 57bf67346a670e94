import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { makeIrohEndpoint } from "../../src/iroh/endpoint.ts"
import { ALPN } from "../../src/iroh/protocol.ts"

const hosts = [{ workerThread: false, name: "on the calling thread" }, { workerThread: true, name: "in a worker thread" }]

describe.each(hosts)("the Iroh host $name", ({ workerThread }) => {
  it.live("fails to start with TransportStartFailed when the address cannot be bound", () =>
    Effect.gen(function*() {
      const exit = yield* makeIrohEndpoint({ bindAddress: "256.0.0.1:0", relayMode: { _tag: "disabled" }, workerThread }).pipe(
        Effect.scoped,
        Effect.exit
      )
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("TransportStartFailed")
    }))

  it.live("ends its accept loop with null once closed, and refuses calls after", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const host = yield* makeIrohEndpoint({ bindAddress: "127.0.0.1:0", relayMode: { _tag: "disabled" }, workerThread }).pipe(
        Scope.provide(scope),
        Effect.orDie
      )
      expect(host.endpointId).toMatch(/^[0-9a-f]{64}$/)
      expect(host.directAddresses().some((a) => a.startsWith("127.0.0.1:"))).toBe(true)
      const accepting = host.acceptNext()
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => accepting)).toBeNull()
      const dial = yield* Effect.promise(() =>
        host.connect({ endpointId: host.endpointId, addresses: ["127.0.0.1:9"] }, ALPN).then(() => "connected", () => "refused")
      )
      expect(dial).toBe("refused")
    }))
})
