import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { irohCall, IrohFailure } from "../../src/iroh/protocol.ts"
import { encodeMessage } from "../../src/message/codec.ts"
import { encodeFramesToArray, preamble, PREAMBLE_LENGTH } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { eventually } from "../support/eventually.ts"
import {
  counterSum,
  countsDelta,
  dialVictim,
  inboundCounts,
  knownRawPeer,
  LEGIT,
  legitFlow,
  MIN_ELECTION_TIMEOUT_MS,
  VICTIM,
  victimAndPeer
} from "../support/hostile.ts"

const KiB = 1024
const MiB = 1024 * KiB
const BUDGET = 1 * MiB
/** Long enough that step 2's three chunks (sent back to back) all count as fresh on a busy machine. */
const STALL_MS = 4000

const chunk = (from: number, transferId: number, data: Uint8Array, totalSize: number, offset = 0): RaftMessage => ({
  msgType: MessageType.Snapshot,
  from,
  to: VICTIM,
  term: 1,
  snapshot: { data, offset, totalSize, done: offset + data.length === totalSize, transferId, metadata: { index: 10, term: 1 } }
})

const snapshotDrops = (peer: number) =>
  Effect.gen(function*() {
    const out: Record<string, number> = {}
    for (const reason of ["snapshot_replaced", "snapshot_failed", "snapshot_memory", "snapshot_stalled"]) {
      const n = yield* counterSum(M.messagesDropped, { transport: "iroh", peer: String(peer), reason })
      if (n > 0) out[reason] = n
    }
    return out
  })

/** The node's snapshot receive memory, as its gauge last sampled it. */
const held = () => Effect.map(Metric.value(M.snapshotReceiveBytes), (state) => Number(state.value))

const snapshotBytesRead = (peer: number) => counterSum(M.bytesReceived, { transport: "iroh", peer: String(peer), class: "snapshot" })

describe("hostile peer: snapshot floods", () => {
  it.live("transfers announcing 1 GiB cost what arrives, one per peer, within the node's budget; a stalled one yields to the leader's", () =>
    Effect.gen(function*() {
      const { victim, legit } = yield* victimAndPeer("iroh", { limits: { max_snapshot_receive_bytes: BUDGET, idle_timeout_ms: STALL_MS } })
      const attackers = [yield* knownRawPeer(victim, 9), yield* knownRawPeer(victim, 10), yield* knownRawPeer(victim, 11)]
      const flow = yield* legitFlow(legit, victim)
      const before = {
        counts: yield* inboundCounts("iroh"),
        drops: [yield* snapshotDrops(9), yield* snapshotDrops(10), yield* snapshotDrops(11), yield* snapshotDrops(LEGIT)]
      }

      // 1. One peer starts 100 transfers of 1 GiB, one byte each, over its four streams: each new
      // one replaces the last, and each holds one small buffer, not 1 GiB of address space.
      const conn = yield* dialVictim(attackers[0]!, victim)
      const streams = yield* irohCall(() => Promise.all([0, 1, 2, 3].map(() => conn.openUni())), IrohFailure.of)
      const started = new Set<number>()
      for (let t = 0; t < 100; t++) {
        const s = t % 4
        const lead = started.has(s) ? undefined : preamble(PriorityClass.Snapshot)
        started.add(s)
        yield* irohCall(() => streams[s]!.writeAll(encodeFramesToArray([encodeMessage(chunk(9, t, Uint8Array.of(1), 1024 * MiB))], lead)), IrohFailure.of)
      }
      yield* eventually("replaced transfers counted", Effect.map(snapshotDrops(9), (d) =>
        (d["snapshot_replaced"] ?? 0) + (d["snapshot_failed"] ?? 0) - (before.drops[0]!["snapshot_replaced"] ?? 0) - (before.drops[0]!["snapshot_failed"] ?? 0)), (n) => n === 99, 20_000)
      // What the node holds for transfers: one buffer of the first size, for the one transfer left.
      expect(yield* held()).toBe(64 * KiB)

      // 2. Three peers each hold 400 KiB of a transfer: the third does not fit in the 1 MiB budget.
      // (Peer 9's four streams are taken: it uses a second connection.)
      // Streams and connections are kept referenced: the binding finishes a stream it collects.
      const conns: Array<Effect.Success<ReturnType<typeof dialVictim>>> = []
      const kept: Array<unknown> = [streams]
      for (const raw of attackers) conns.push(yield* dialVictim(raw, victim))
      for (const [i, c] of conns.entries()) {
        const s = yield* irohCall(() => c.openUni(), IrohFailure.of)
        kept.push(s)
        const frames = encodeFramesToArray([encodeMessage(chunk(9 + i, 1000, new Uint8Array(400 * KiB), MiB))], preamble(PriorityClass.Snapshot))
        const read = yield* snapshotBytesRead(9 + i)
        yield* irohCall(() => s.writeAll(frames), IrohFailure.of)
        // In order: the victim has taken this chunk (read and delivered in one step; the preamble
        // is not counted as data) before the next is sent.
        yield* eventually(`chunk of peer ${9 + i} read`, snapshotBytesRead(9 + i), (n) => n - read === frames.length - PREAMBLE_LENGTH, 20_000)
        expect(yield* held()).toBeLessThanOrEqual(BUDGET)
      }
      yield* eventually("over-budget transfer counted", snapshotDrops(11), (d) => (d["snapshot_memory"] ?? 0) === 1 + (before.drops[2]!["snapshot_memory"] ?? 0), 20_000)

      // 3. The leader's snapshot, after the two partial ones stalled: they are evicted, it arrives whole.
      yield* Effect.sleep(STALL_MS + 200)
      const data = Uint8Array.from({ length: 300 * KiB }, (_, i) => i & 0xff)
      yield* legit.send(VICTIM, { msgType: MessageType.Snapshot, from: LEGIT, to: VICTIM, term: 1, snapshot: { data, metadata: { index: 20, term: 1 } } })
      yield* eventually("leader's snapshot delivered", counterSum(M.snapshotsReceived, { transport: "iroh", peer: String(LEGIT) }), (n) => n >= 1, 20_000)
      expect(countsDelta(before.drops[0]!, yield* snapshotDrops(9))["snapshot_stalled"]).toBe(1)
      expect(countsDelta(before.drops[1]!, yield* snapshotDrops(10))["snapshot_stalled"]).toBe(1)

      // 4. A stream that ends inside a transfer.
      const last = yield* irohCall(() => conns[0]!.openUni(), IrohFailure.of)
      yield* irohCall(async () => {
        await last.writeAll(encodeFramesToArray([encodeMessage(chunk(9, 2000, new Uint8Array(KiB), MiB))], preamble(PriorityClass.Snapshot)))
        await last.finish()
      }, IrohFailure.of)
      yield* eventually("truncated transfer counted", Effect.map(inboundCounts("iroh"), (now) => countsDelta(before.counts, now)), (d) => d["truncated_snapshot"] === 1, 20_000)

      const report = yield* flow.stop
      expect(kept.length).toBe(4)
      expect(yield* held()).toBe(0)
      const delivered = report.others.filter((m) => m.msgType === MessageType.Snapshot)
      expect(delivered.map((m) => m.from)).toEqual([LEGIT])
      expect(Array.from(delivered[0]!.snapshot!.data)).toEqual(Array.from(data))
      expect(countsDelta(before.counts, yield* inboundCounts("iroh"))).toEqual({ truncated_snapshot: 1 })
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
    }).pipe(Effect.scoped), { timeout: 90_000 })
})
