/**
 * One of three Iroh peers stops (SIGSTOP: its sockets stay, nothing answers) while node 1
 * sends votes to all three: the dark watch declares it dead, its connection is closed and
 * redialled, and none of that may hold up the votes to the two healthy peers. Their vote
 * latency while the third peer dies is compared with that of the same length of time before.
 *
 * With the shipped `dark_after_ms` the peer is declared dead about 200 ms after it stops, with
 * a backlog on its connection. The close fails every call still pending on that connection at
 * once; with Rust backtraces on, symbolising their backtraces held up the binding's runtime
 * threads, and with them every other connection in the process, for 180-290 ms
 * (`src/iroh/native.ts`). So the test turns them on (`RUST_BACKTRACE=1`) whatever the
 * environment says, before any binding call can fail: Rust reads it at its first backtrace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { irohChildTable, spawnChildNode } from "../support/child-node.ts"
import { addressOf, append, nodeConfig, startNode, tempDir, vote } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { watchLoopDelay } from "../support/loop-delay.ts"

process.env["RUST_BACKTRACE"] = "1"

const SEND_EVERY_MS = 10
/** 1 KB appends to the dying peer per vote: it dies with a backlog, as a follower would. */
const LOAD_PER_TICK = 5
/** Each window: the death (dark watch, close, redials) falls well inside it. */
const WINDOW_MS = 3000

interface Latencies {
  readonly max: number
  readonly p99: number
  readonly count: number
}

const summary = (values: ReadonlyArray<number>): Latencies => {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    max: Math.round(sorted[sorted.length - 1] ?? Number.NaN),
    p99: Math.round(sorted[Math.floor(sorted.length * 0.99)] ?? Number.NaN),
    count: sorted.length
  }
}

describe("a dead peer does not stall the others (Iroh)", () => {
  it.live("votes to two healthy peers keep their latency while the third is stopped and declared dead", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* nodeConfig("iroh", 1, dir, { strategy: {} }))
      const healthy: Array<RaftTransportService> = []
      for (const id of [2, 3]) healthy.push(yield* startNode(yield* nodeConfig("iroh", id, dir)))
      const self = a.localAddress()
      const victim = yield* spawnChildNode(irohChildTable(4, "127.0.0.1:0", dir, self))
      for (const node of healthy) {
        yield* node.addPeer(addressOf(a))
        yield* a.addPeer(addressOf(node))
      }
      yield* a.addPeer({ id: 4, irohEndpointId: victim.address.iroh!.endpointId, irohAddresses: victim.address.iroh!.addresses })

      // Send time of each vote (term = sequence number); latency on arrival at 2 and 3.
      const sentAt = new Map<number, number>()
      const arrivals: Array<{ readonly at: number; readonly latency: number }> = []
      for (const node of healthy) {
        yield* Effect.forkScoped(
          Stream.runForEach(node.messages, (m) =>
            Effect.sync(() => {
              const at = performance.now()
              arrivals.push({ at, latency: at - (sentAt.get(m.term ?? 0) ?? Number.NaN) })
            })),
          { startImmediately: true }
        )
      }
      const sender = yield* Effect.forkScoped(
        Effect.gen(function*() {
          for (let seq = 1;; seq++) {
            sentAt.set(seq, performance.now())
            for (const to of [2, 3, 4]) yield* Effect.ignore(a.send(to, vote(1, to, seq)))
            for (let i = 0; i < LOAD_PER_TICK; i++) yield* Effect.ignore(a.send(4, append(1, 4, seq * 100 + i, 1024)))
            yield* Effect.sleep(SEND_EVERY_MS)
          }
        }),
        { startImmediately: true }
      )
      yield* eventually("all three links up", a.peers, (ps) => ps.every((p) => p.links.every((l) => l.state === "connected")))
      yield* Effect.sleep("1 second")

      const before = yield* Effect.scoped(Effect.gen(function*() {
        const loop = yield* watchLoopDelay()
        const from = performance.now()
        yield* Effect.sleep(WINDOW_MS)
        return { from, to: performance.now(), stall: loop() }
      }))
      const during = yield* Effect.scoped(Effect.gen(function*() {
        const loop = yield* watchLoopDelay()
        const from = performance.now()
        yield* victim.pause(true)
        yield* eventually("peer 4 declared dead", a.peerStatus(4), (s) => s.links[0]!.state !== "connected", WINDOW_MS)
        const left = WINDOW_MS - (performance.now() - from)
        if (left > 0) yield* Effect.sleep(left)
        return { from, to: performance.now(), stall: loop() }
      }))
      yield* Fiber.interrupt(sender)
      yield* victim.pause(false)

      const inWindow = (w: { from: number; to: number }) =>
        summary(arrivals.filter((x) => x.at >= w.from && x.at < w.to).map((x) => x.latency))
      const base = inWindow(before)
      const fault = inWindow(during)
      console.log("vote latency to the healthy peers (ms):", {
        before: { ...base, loopStallMs: Math.round(before.stall) },
        whilePeer4Dies: { ...fault, loopStallMs: Math.round(during.stall) }
      })
      // Every vote arrived in both windows (two healthy peers, one vote each per send).
      expect(base.count).toBeGreaterThan(0)
      expect(fault.count).toBeGreaterThan(0)
      // 99% of the votes while peer 4 dies are no slower than the slowest before it (+5 ms).
      // A single vote can be: an event-loop stall of this loaded machine lands on one vote or
      // another in either window. The stall this guards against held back every vote for
      // 300-360 ms (a p99 of 300-550 ms), which no such stall explains.
      expect(fault.p99).toBeLessThanOrEqual(base.max + 5)
    }).pipe(Effect.scoped), { timeout: 120_000 })
})
