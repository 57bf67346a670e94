import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { encodeMessageBatch } from "../../src/grpc/batch-encoding.ts"
import { type Ack, decodeAck, passThrough, STREAM_PATH } from "../../src/grpc/service-definition.ts"
import type { IrohHost } from "../../src/iroh/host.ts"
import { ALPN, PING_BYTES } from "../../src/iroh/protocol.ts"
import { startWorkerHost } from "../../src/iroh/worker-host.ts"
import { encodeMessage } from "../../src/message/codec.ts"
import { preamble } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { eventually } from "../support/eventually.ts"
import { streamMetadata } from "../support/grpc-raw.ts"
import { counterSum, countsDelta, inboundCounts, legitFlow, MIN_ELECTION_TIMEOUT_MS, rssMiB, VICTIM, victimAndPeer } from "../support/hostile.ts"

const ATTACKER = 9
const MiB = 1024 * 1024
/**
 * Resident memory the process may gain under the attack. It holds the victim, the legitimate
 * peer and the attacker, whose Iroh binding turns each 4 MiB write into a JS array of 8 bytes
 * per byte (+87-105 MiB measured over the Iroh attack, -8 to +43 MiB over gRPC). Without the caps,
 * decoding one such frame alone took 2.5-3.5 s and 131 MiB of heap
 * (bench/tools/decode-limits.ts), and the issue measured 235 -> 948 MB.
 */
const RSS_GROWTH_BOUND_MIB = 200

/** A message of `n` empty entries and nothing else, as the attacker writes it: two bytes per entry. */
const emptyEntries = (n: number): Uint8Array => Uint8Array.from({ length: 2 * n }, (_, i) => (i % 2 === 0 ? 0x3a : 0))

/** An attacker whose Iroh binding runs in a worker thread, so its own copies do not load the victim's event loop. */
const workerAttacker = Effect.acquireRelease(
  Effect.promise(() => startWorkerHost({ bindAddress: "127.0.0.1:0", secretKey: undefined, relayMode: { _tag: "disabled" }, alpn: ALPN, acceptAlpns: [ALPN] }, PING_BYTES)),
  (host) => Effect.promise(() => host.close())
)

const droppedForged = (transport: string) => counterSum(M.messagesDropped, { transport, peer: String(ATTACKER), reason: "forged_from" })

describe("hostile peer: amplification", () => {
  it.live("Iroh: frames of millions of empty entries are refused before decoding; the legitimate peer keeps flowing", () =>
    Effect.gen(function*() {
      const { victim, legit } = yield* victimAndPeer("iroh")
      const attacker: IrohHost = yield* workerAttacker
      yield* victim.addPeer({ id: ATTACKER, irohEndpointId: attacker.endpointId, irohAddresses: [] })
      const address = victim.localAddress().iroh!

      // The inputs are made before the flow starts: making them is the attacker's work, not the victim's.
      const HUGE = 3
      const huge = emptyEntries((4 * MiB - 8) / 2)
      const WITHIN = 512
      const within = Array.from({ length: WITHIN }, () => emptyEntries(4096))
      const before = { counts: yield* inboundCounts("iroh"), forged: yield* droppedForged("iroh"), rss: rssMiB() }
      const flow = yield* legitFlow(legit, victim)
      const conn = yield* Effect.promise(() => attacker.connect({ endpointId: address.endpointId, addresses: address.addresses }))
      // 1. Frames at the default 4 MiB limit, each ~2 M empty entries: refused at entry 4,097.
      for (let i = 0; i < HUGE; i++) {
        const stream = yield* Effect.promise(() => conn.openUni(0))
        yield* Effect.promise(() => stream.writeFrames([huge], preamble(PriorityClass.Append)).catch(() => undefined))
      }
      // 2. Frames just within the cap, 4,096 empty entries each, 512 of them (4 MiB): decoded a
      // slice at a time, and dropped as forged (they name no sender).
      // In writes of 64 frames: the attacker's binding holds each write as an array of 8 bytes per byte.
      const stream = yield* Effect.promise(() => conn.openUni(0))
      for (let i = 0; i < WITHIN; i += 64) {
        yield* Effect.promise(() => stream.writeFrames(within.slice(i, i + 64), i === 0 ? preamble(PriorityClass.Append) : undefined))
      }
      yield* eventually(
        "refusals counted",
        Effect.map(inboundCounts("iroh"), (now) => countsDelta(before.counts, now)),
        (d) => d["too_many_entries"] === HUGE,
        60_000
      )
      yield* eventually("forged drops counted", droppedForged("iroh"), (n) => n - before.forged === WITHIN, 60_000)
      const rssGrowth = rssMiB() - before.rss
      if (process.env["HOSTILE_DEBUG"] !== undefined) console.log(`rss +${rssGrowth.toFixed(0)} MiB`)
      const report = yield* flow.stop
      expect(countsDelta(before.counts, yield* inboundCounts("iroh"))).toEqual({ too_many_entries: HUGE })
      expect(report.others.filter((m) => m.from === ATTACKER)).toEqual([])
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
      expect(rssGrowth).toBeLessThan(RSS_GROWTH_BOUND_MIB)
    }).pipe(Effect.scoped), { timeout: 180_000 })

  it.live("gRPC: batches of millions of tiny messages are refused before decoding, oversize ones counted; the legitimate peer keeps flowing", () =>
    Effect.gen(function*() {
      const { victim, legit } = yield* victimAndPeer("grpc")
      yield* victim.addPeer({ id: ATTACKER, irohAddresses: [], grpcAddress: "127.0.0.1:9" })

      const TINY = 6
      const tiny = Buffer.from(Uint8Array.from({ length: 4 * MiB - 64 }, (_, i) => (i % 2 === 0 ? 0x0a : 0)))
      const OVERSIZE = 3
      const oversize = Buffer.alloc(4 * MiB + 1)
      const AT_CAP = 20
      const atCap = encodeMessageBatch(Array.from({ length: 1024 }, () => encodeMessage({ msgType: MessageType.Append, from: 0, to: VICTIM, entries: Array.from({ length: 64 }, () => ({ term: 0, index: 0 })) })))
      const before = { counts: yield* inboundCounts("grpc"), forged: yield* droppedForged("grpc"), rss: rssMiB() }
      const flow = yield* legitFlow(legit, victim)
      const client = new grpc.Client(victim.localAddress().grpc!.address, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        "grpc.max_send_message_length": -1
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      // 1. 4 MiB of two-byte messages (~2 M of them): refused at message 1,025.
      for (let i = 0; i < TINY; i++) expect(yield* call(client, [tiny])).toEqual({ ok: false, code: grpc.status.RESOURCE_EXHAUSTED })
      // 2. Over max_message_bytes: grpc-js refuses it; counted.
      for (let i = 0; i < OVERSIZE; i++) expect(yield* call(client, [oversize])).toEqual({ ok: false, code: grpc.status.RESOURCE_EXHAUSTED })
      // 3. Batches at every cap (1,024 messages, 65,536 entries): decoded a slice at a time, dropped as forged.
      for (let i = 0; i < AT_CAP; i++) expect(yield* call(client, [atCap])).toEqual({ ok: true, received: 0 })

      yield* eventually("forged drops counted", droppedForged("grpc"), (n) => n - before.forged === AT_CAP * 1024, 60_000)
      const rssGrowth = rssMiB() - before.rss
      if (process.env["HOSTILE_DEBUG"] !== undefined) console.log(`rss +${rssGrowth.toFixed(0)} MiB`)
      const report = yield* flow.stop
      expect(countsDelta(before.counts, yield* inboundCounts("grpc"))).toEqual({ too_many_messages: TINY, message_too_large: OVERSIZE })
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
      expect(rssGrowth).toBeLessThan(RSS_GROWTH_BOUND_MIB)
    }).pipe(Effect.scoped), { timeout: 180_000 })
})

const call = (client: grpc.Client, batches: ReadonlyArray<Buffer>) =>
  Effect.callback<{ readonly ok: true; readonly received: number } | { readonly ok: false; readonly code: grpc.status }>((resume) => {
    const md = new grpc.Metadata()
    for (const [k, v] of Object.entries(streamMetadata("default", ATTACKER, VICTIM, PriorityClass.Append))) md.set(k, v)
    const c = client.makeClientStreamRequest<Buffer, Ack>(STREAM_PATH, passThrough, decodeAck, md, {}, (error, ack) => {
      resume(Effect.succeed(error !== null ? { ok: false, code: error.code } : { ok: true, received: ack?.received ?? -1 }))
    })
    c.on("error", () => {})
    for (const b of batches) c.write(b)
    c.end()
  })
