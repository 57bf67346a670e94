import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect } from "effect"
import { makeIrohLink } from "../../src/iroh/link.ts"
import { directHost } from "../../src/iroh/direct-host.ts"
import { ALPN, IrohFailure, irohCall, PING_BYTES } from "../../src/iroh/protocol.ts"
import { eventuallyDefined } from "../support/eventually.ts"
import { rawIrohEndpoint } from "../support/raw-iroh.ts"

type Endpoint = InstanceType<typeof iroh.Endpoint>
type BiStream = Awaited<ReturnType<Awaited<ReturnType<Endpoint["connect"]>>["acceptBi"]>>

/**
 * Accepts connections on `endpoint` and holds every ping (bi stream) unanswered until
 * `answer` is called, which echoes the held ones and every later one.
 */
const heldPingServer = (endpoint: Endpoint) =>
  Effect.gen(function*() {
    const held: Array<BiStream> = []
    let answering = false
    const echo = (bi: BiStream) =>
      irohCall(async () => {
        const bytes = await bi.recv.readExact(PING_BYTES.length)
        await bi.send.writeAll(bytes)
        await bi.send.finish()
      }, IrohFailure.of).pipe(Effect.ignore({ log: "Debug", message: "ping not answered" }))
    yield* Effect.gen(function*() {
      while (true) {
        const incoming = yield* irohCall(() => endpoint.acceptNext(), IrohFailure.of)
        if (incoming === null) return
        // A dial for an ALPN this server does not speak (the link's first try) fails here alone.
        const accepted = yield* Effect.result(irohCall(async () => (await incoming.accept()).connect(), IrohFailure.of))
        if (accepted._tag === "Failure") continue
        const conn = accepted.success
        yield* Effect.forkScoped(
          Effect.gen(function*() {
            while (true) {
              const bi = yield* irohCall(() => conn.acceptBi(), IrohFailure.of)
              if (answering) yield* Effect.forkScoped(echo(bi), { startImmediately: true })
              else held.push(bi)
            }
          }).pipe(Effect.ignore({ log: "Debug", message: "connection ended" })),
          { startImmediately: true }
        )
      }
    }).pipe(Effect.ignore({ log: "Debug", message: "accept loop ended" }), Effect.forkScoped({ startImmediately: true }))
    return {
      answer: Effect.gen(function*() {
        answering = true
        yield* Effect.forEach(held.splice(0), (bi) => Effect.forkScoped(echo(bi), { startImmediately: true }), { discard: true })
      })
    }
  })

describe("Iroh link", () => {
  it.live("reports the RTT its probes measured, never QUIC's handshake estimate", () =>
    Effect.gen(function*() {
      const b = yield* rawIrohEndpoint
      const server = yield* heldPingServer(b)
      const bAddress = b.boundSockets().find((s) => s.startsWith("127.0.0.1:"))!
      const a = yield* rawIrohEndpoint
      const link = makeIrohLink({
        endpoint: directHost(a, ALPN, PING_BYTES),
        peer: 2,
        address: () => ({ endpointId: b.id().toString(), addresses: [bAddress] }),
        connectTimeoutMs: 5000,
        probeIntervalMs: 100,
        probeTimeoutMs: 10_000,
        probeFailuresBeforeClose: 3,
        // Pings go unanswered for a while here: QUIC still acknowledges them, so the path is not dark.
        darkAfterMs: 200
      })
      const session = yield* link.connect
      // Connected, so QUIC has an RTT; no ping has been answered, so the link has none.
      yield* Effect.sleep("300 millis")
      expect(session.rttMs()).toBeUndefined()
      yield* server.answer
      const rtt = yield* eventuallyDefined("probe RTT", Effect.sync(() => session.rttMs()), 5000)
      expect(rtt).toBeGreaterThan(0)
    }).pipe(Effect.scoped))
})
