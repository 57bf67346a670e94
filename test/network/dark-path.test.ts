/**
 * Dark Iroh paths in dual mode with the shipped detection settings: a path that goes dark
 * moves the peer to gRPC within the minimum Raft election timeout, a path that comes back
 * gets its traffic back only after the recovery hold-down, and a path flapping 2 s up / 2 s
 * dark never falls back while it is up.
 *
 * Peer 2's Iroh half runs in a child process in its own network namespace (the only path to
 * it is a veth pair, which the test takes down and up: a pulled cable, datagrams dropped
 * silently); its gRPC half runs here on loopback and stays reachable. A UDP relay on loopback
 * does not do for this: after the first connection Iroh knows the peer's bound address and
 * a redial goes around the relay.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Queue, Stream } from "effect"
import { join } from "node:path"
import type { RaftMessage } from "../../src/message/types.ts"
import type { TransportEvent } from "../../src/domain/events.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { type ChildNode, irohChildTable, spawnChildNode } from "../support/child-node.ts"
import { nodeConfig, startNode, tempDir, vote } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { watchLoopDelay } from "../support/loop-delay.ts"
import { makeNetns } from "../support/netns.ts"

/** The reference Raft's default `election_timeout_min_ms`: failover must beat an election. */
const MIN_ELECTION_TIMEOUT_MS = 300
/** The shipped `recovery_hold_down_ms`. */
const HOLD_DOWN_MS = 1000
/** One vote request every this many ms, as a candidate's retries would come. */
const SEND_EVERY_MS = 10

/**
 * Node 1 (dual, shipped strategy: `always_iroh`, `dark_after_ms`, hold-down) and peer 2,
 * whose Iroh half is in a namespace (`setLink` darkens the path) and gRPC half here.
 */
const darkablePair = Effect.gen(function*() {
  const ns = yield* makeNetns()
  const dir = tempDir()
  const a = yield* startNode(yield* nodeConfig("dual", 1, dir, {
    iroh_config: { key_file: join(dir, "node1.key"), relay_mode: "disabled", bind_address: `${ns.hostAddress}:0` },
    strategy: {}
  }))
  const self = a.localAddress()
  const bIroh = yield* spawnChildNode(irohChildTable(2, `${ns.nsAddress}:0`, dir, self), { wrap: ns.exec })
  const bGrpc = yield* startNode(yield* nodeConfig("grpc", 2, dir))
  yield* bGrpc.addPeer({ id: 1, irohAddresses: [], grpcAddress: self.grpc!.address })
  yield* a.addPeer({
    id: 2,
    irohEndpointId: bIroh.address.iroh!.endpointId,
    irohAddresses: bIroh.address.iroh!.addresses,
    grpcAddress: bGrpc.localAddress().grpc!.address
  })
  yield* eventually("both links up", a.peerStatus(2), (s) => s.links.every((l) => l.state === "connected"))
  return { a, bIroh, bGrpc, setPath: (up: boolean) => ns.setLink(up) }
})

interface Stamped<A> {
  readonly at: number
  readonly value: A
}

/** Everything `node` receives, stamped with `performance.now()` on arrival. */
const recordArrivals = (node: RaftTransportService, into: Array<Stamped<RaftMessage>>) =>
  Effect.forkScoped(
    Effect.forever(Effect.map(node.receiveBatch(256), (batch) => {
      const at = performance.now()
      for (const value of batch) into.push({ at, value })
    })),
    { startImmediately: true }
  )

const recordEvents = (node: RaftTransportService, into: Array<Stamped<TransportEvent>>) =>
  Effect.forkScoped(Stream.runForEach(node.events, (value) => Effect.sync(() => into.push({ at: performance.now(), value }))), {
    startImmediately: true
  })

/** Sends a vote request to node 2 every `SEND_EVERY_MS` (term = sequence number) until interrupted. */
const sendVotes = (a: RaftTransportService) =>
  Effect.forkScoped(
    Effect.gen(function*() {
      for (let seq = 1;; seq++) {
        yield* Effect.ignore(a.send(2, vote(1, 2, seq)))
        yield* Effect.sleep(SEND_EVERY_MS)
      }
    }),
    { startImmediately: true }
  )

/** What the child reports receiving, stamped on arrival here. */
const recordChild = (child: ChildNode, into: Array<Stamped<number>>) =>
  Effect.forkScoped(Effect.forever(Effect.map(Queue.take(child.received), (r) => void into.push({ at: r.at, value: r.index }))), {
    startImmediately: true
  })

const firstAfter = <A>(items: ReadonlyArray<Stamped<A>>, at: number, match: (a: A) => boolean = () => true) =>
  items.find((i) => i.at >= at && match(i.value))

/** The last item that `match`es (Array.prototype.findLast is ES2023, past the compile target). */
const lastOf = <A>(items: ReadonlyArray<A>, match: (a: A) => boolean): A | undefined => {
  for (let i = items.length - 1; i >= 0; i--) if (match(items[i]!)) return items[i]
  return undefined
}

const tagIs = (tag: TransportEvent["_tag"]) => (e: TransportEvent) => e._tag === tag

describe("dark Iroh path in dual mode (network namespace, shipped settings)", () => {
  it.live("falls back to gRPC within the minimum election timeout and returns only after the hold-down", () =>
    Effect.gen(function*() {
      const { a, bIroh, bGrpc, setPath } = yield* darkablePair
      const viaIroh: Array<Stamped<number>> = []
      const viaGrpc: Array<Stamped<RaftMessage>> = []
      const events: Array<Stamped<TransportEvent>> = []
      yield* recordChild(bIroh, viaIroh)
      yield* recordArrivals(bGrpc, viaGrpc)
      yield* recordEvents(a, events)
      const sender = yield* sendVotes(a)
      yield* Effect.sleep("1 second")
      const loopDelay = yield* watchLoopDelay()
      expect(viaIroh.length).toBeGreaterThan(0)
      expect(viaGrpc).toEqual([])

      const commandAt = performance.now()
      yield* setPath(false)
      const commandMs = performance.now() - commandAt
      yield* Effect.sleep("2 seconds")
      // The path went dark somewhere inside the `ip` command (tens to hundreds of ms on a
      // loaded machine): the last vote that still arrived over Iroh says when, to within the
      // 10 ms between votes.
      const lastOverIroh = lastOf(viaIroh, (v) => v.at >= commandAt && v.at <= commandAt + commandMs)
      const darkAt = lastOverIroh?.at ?? commandAt
      const fellBack = firstAfter(events, commandAt, tagIs("FellBack"))
      const firstOverGrpc = firstAfter(viaGrpc, commandAt)
      expect(fellBack, "no fallback while the path was dark").toBeDefined()
      expect(firstOverGrpc, "no vote over gRPC while the path was dark").toBeDefined()
      expect(fellBack!.value).toMatchObject({ cause: expect.stringMatching(/dark path/) })

      yield* setPath(true)
      const upAt = performance.now()
      yield* Effect.sleep("4 seconds")
      yield* Fiber.interrupt(sender)
      const recovered = firstAfter(events, upAt, tagIs("Recovered"))
      expect(recovered, "traffic never returned to Iroh").toBeDefined()
      const failoverMs = fellBack!.at - darkAt
      const voteGapMs = firstOverGrpc!.at - darkAt
      const recoveryMs = recovered!.at - upAt
      const stalledMs = loopDelay()
      console.log("dark path, dual, shipped settings:", {
        failoverMs: Math.round(failoverMs),
        loopStallMs: Math.round(stalledMs),
        voteGapMs: Math.round(voteGapMs),
        recoveryMs: Math.round(recoveryMs),
        ipCommandMs: Math.round(commandMs)
      })
      expect(failoverMs).toBeLessThanOrEqual(MIN_ELECTION_TIMEOUT_MS + stalledMs)
      expect(recoveryMs).toBeGreaterThanOrEqual(HOLD_DOWN_MS)
      expect(events.filter((e) => e.value._tag === "FellBack")).toHaveLength(1)
    }).pipe(Effect.scoped), { timeout: 120_000 })

  it.live("a path flapping 2 s up / 2 s dark falls back only while dark, and routes flip no faster than the hold-down", () =>
    Effect.gen(function*() {
      const { a, bIroh, bGrpc, setPath } = yield* darkablePair
      const events: Array<Stamped<TransportEvent>> = []
      const viaIroh: Array<Stamped<number>> = []
      const viaGrpc: Array<Stamped<RaftMessage>> = []
      yield* recordChild(bIroh, viaIroh)
      yield* recordArrivals(bGrpc, viaGrpc)
      yield* recordEvents(a, events)
      const loopDelay = yield* watchLoopDelay()
      const sender = yield* sendVotes(a)
      const darkPeriods: Array<{ readonly from: number; readonly to: number }> = []
      for (let cycle = 0; cycle < 4; cycle++) {
        yield* Effect.sleep("2 seconds")
        // From before the link goes down to after it is up again: `ip` takes a while on a
        // loaded machine, and the path is dark somewhere within each command.
        const from = performance.now()
        yield* setPath(false)
        yield* Effect.sleep("2 seconds")
        yield* setPath(true)
        darkPeriods.push({ from, to: performance.now() })
      }
      yield* Effect.sleep("500 millis")
      yield* Fiber.interrupt(sender)

      const flips = events.filter((e) => e.value._tag === "FellBack" || e.value._tag === "Recovered")
      const fallbacks = flips.filter((e) => e.value._tag === "FellBack")
      const stalledMs = loopDelay()
      const report = flips.map((e) => ({
        tag: e.value._tag,
        at: Math.round(e.at - darkPeriods[0]!.from),
        msIntoDark: Math.round(e.at - (lastOf(darkPeriods, (d) => d.from <= e.at)?.from ?? Number.NaN)),
        dark: darkPeriods.some((d) => d.from <= e.at && e.at <= d.to)
      }))
      const arrivals = [...viaIroh.map((v) => v.at), ...viaGrpc.map((v) => v.at)].sort((x, y) => x - y)
      let longestGapMs = 0
      for (let i = 1; i < arrivals.length; i++) longestGapMs = Math.max(longestGapMs, arrivals[i]! - arrivals[i - 1]!)
      console.log("flapping path, dual, shipped settings:", { longestGapMs: Math.round(longestGapMs), loopStallMs: Math.round(stalledMs), report })
      // The first dark period always falls back; every fallback is inside a dark period, within
      // the election timeout of its start.
      expect(fallbacks.length).toBeGreaterThanOrEqual(1)
      // A detection can end late by as long as the event loop was held up.
      for (const f of fallbacks) {
        const period = darkPeriods.find((d) => d.from <= f.at && f.at <= d.to + stalledMs)
        expect(period, `a fallback ${JSON.stringify(report)} outside every dark period`).toBeDefined()
      }
      // The longest gap between votes is reported, not bounded: half of the arrivals are stamped
      // by a child process whose own event-loop stalls (unmeasured here) it would include. The
      // failover time is bounded by the test above, on arrivals stamped here.
      // A return to Iroh comes only after the path stayed up for the hold-down.
      for (const r of flips.filter((e) => e.value._tag === "Recovered")) {
        const lastDark = lastOf(darkPeriods, (d) => d.to <= r.at)
        expect(lastDark).toBeDefined()
        expect(r.at - lastDark!.to).toBeGreaterThanOrEqual(HOLD_DOWN_MS)
      }
    }).pipe(Effect.scoped), { timeout: 120_000 })
})
