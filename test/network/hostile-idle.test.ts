import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect } from "effect"
import { readdirSync } from "node:fs"
import * as net from "node:net"
import { ALPN } from "../../src/iroh/protocol.ts"
import { eventually } from "../support/eventually.ts"
import { countsDelta, dialVictim, inboundCounts, knownRawPeer, legitFlow, MIN_ELECTION_TIMEOUT_MS, victimAndPeer } from "../support/hostile.ts"
import { rawIrohEndpoint } from "../support/raw-iroh.ts"

const ATTACKER = 9

const openDescriptors = (): number => readdirSync("/proc/self/fd").length

describe("hostile peer: idle connections and streams", () => {
  it.live("gRPC: a flood of idle TCP connections is capped and timed out; descriptors stay bounded and the peer keeps flowing", () =>
    Effect.gen(function*() {
      const CAP = 64
      const FLOOD = 300
      const { victim, legit } = yield* victimAndPeer("grpc", { limits: { max_connections: CAP, handshake_timeout_ms: 1000 } })
      const flow = yield* legitFlow(legit, victim)
      const before = yield* inboundCounts("grpc")
      const baseline = openDescriptors()
      const [host, port] = [victim.localAddress().grpc!.address.split(":")[0]!, Number(victim.localAddress().grpc!.address.split(":")[1])]

      // Connections that send nothing (no TLS, no HTTP/2 preface, no token): each is closed by
      // the victim, at once over the cap or after the handshake timeout.
      let closed = 0
      const sockets = Array.from({ length: FLOOD }, () => {
        const s = net.connect({ host, port })
        s.on("error", () => undefined)
        s.on("close", () => closed++)
        return s
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((s) => s.destroy())))
      let peak = 0
      yield* eventually("every flood connection closed by the victim", Effect.sync(() => {
        peak = Math.max(peak, openDescriptors())
        return closed
      }), (n) => n === FLOOD, 20_000)
      const delta = countsDelta(before, yield* inboundCounts("grpc"))
      // Every connection counted once: refused over the cap, or closed for never making a call.
      expect((delta["too_many_connections"] ?? 0) + (delta["handshake_timeout"] ?? 0)).toBe(FLOOD)
      // How many go which way depends on how fast the flood connects against the timeout.
      expect(delta["too_many_connections"]).toBeGreaterThan(0)
      // The attacker's own FLOOD sockets live in this process too; the victim's side holds at most CAP.
      expect(peak - baseline).toBeLessThanOrEqual(FLOOD + CAP + 16)
      expect(openDescriptors() - baseline).toBeLessThan(16)
      const report = yield* flow.stop
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live.each([false, true])("Iroh (binding in a worker thread: %s): a known peer's extra connections replace its oldest, extra streams and pings are stopped, silent streams time out, a wrong ALPN is counted", (workerThread) =>
    Effect.gen(function*() {
      // Long enough that the five pings all arrive while the first four are still being waited for.
      const { victim, legit } = yield* victimAndPeer("iroh", { limits: { handshake_timeout_ms: 3000 } }, { workerThread })
      const raw = yield* knownRawPeer(victim, ATTACKER)
      const flow = yield* legitFlow(legit, victim)
      const before = yield* inboundCounts("iroh")

      // Ten uni streams holding half a preamble, and five pings that never send their bytes.
      const first = yield* dialVictim(raw, victim)
      // Kept referenced: the binding finishes a stream it collects, which would end it early.
      const held: Array<unknown> = []
      yield* Effect.promise(async () => {
        for (let i = 0; i < 10; i++) {
          const uni = await first.openUni()
          await uni.writeAll([0x52, 0x54])
          held.push(uni)
        }
        for (let i = 0; i < 5; i++) {
          const bi = await first.openBi()
          await bi.send.writeAll([0x52])
          held.push(bi)
        }
      })
      yield* eventually("extra streams stopped, silent ones timed out", Effect.map(inboundCounts("iroh"), (now) => countsDelta(before, now)), (d) =>
        d["too_many_streams"] === 6 && d["handshake_timeout"] === 4, 20_000)

      // Four more connections: with two allowed per peer, each of the last three closes the oldest.
      const later = []
      for (let i = 0; i < 4; i++) later.push(yield* dialVictim(raw, victim))
      // The oldest is closed (its close frame names the replacement, or a late packet of ours
      // meets a stateless reset: either way it ends).
      yield* Effect.promise(() => first.closed())
      // The first connection's pings: four waited for until their timeout, one stopped at once
      // (counted as its connection ends).
      yield* eventually("replacements and pings counted", Effect.map(inboundCounts("iroh"), (now) => countsDelta(before, now)), (d) =>
        d["connection_replaced"] === 3 && d["too_many_streams"] === 7, 20_000)

      // A dialler offering another protocol.
      const other = Array.from(new TextEncoder().encode("not-raft/1"))
      const refused = yield* Effect.exit(dialVictim(raw, victim, other))
      expect(refused._tag).toBe("Failure")
      yield* eventually("bad ALPN counted", Effect.map(inboundCounts("iroh"), (now) => countsDelta(before, now)), (d) => d["bad_alpn"] === 1, 20_000)

      expect(countsDelta(before, yield* inboundCounts("iroh"))).toEqual({
        too_many_streams: 7,
        handshake_timeout: 4,
        connection_replaced: 3,
        bad_alpn: 1
      })
      const report = yield* flow.stop
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
      expect(later.length + held.length).toBe(19)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("Iroh (binding in a worker thread): connections over max_connections are refused before their handshake", () =>
    Effect.gen(function*() {
      // The legitimate peer's connection and one more.
      const { victim, legit } = yield* victimAndPeer("iroh", { limits: { max_connections: 2 } }, { workerThread: true })
      const raw = yield* knownRawPeer(victim, ATTACKER)
      const flow = yield* legitFlow(legit, victim)
      const before = yield* inboundCounts("iroh")
      yield* dialVictim(raw, victim)
      const stranger = yield* rawIrohEndpoint
      const refused = yield* Effect.exit(dialVictim(stranger, victim))
      expect(refused._tag).toBe("Failure")
      yield* eventually("refusal counted", Effect.map(inboundCounts("iroh"), (now) => countsDelta(before, now)), (d) =>
        d["too_many_connections"] === 1, 20_000)
      expect(countsDelta(before, yield* inboundCounts("iroh"))).toEqual({ too_many_connections: 1 })
      const report = yield* flow.stop
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
      expect(ALPN.length).toBeGreaterThan(0)
    }).pipe(Effect.scoped), { timeout: 60_000 })
})

void iroh
