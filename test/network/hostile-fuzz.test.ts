import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { encodeMessageBatch } from "../../src/grpc/batch-encoding.ts"
import { type Ack, decodeAck, passThrough, STREAM_PATH } from "../../src/grpc/service-definition.ts"
import { encodeMessage } from "../../src/message/codec.ts"
import { encodeFrames, preamble } from "../../src/message/framing.ts"
import { type PriorityClass } from "../../src/message/priority.ts"
import { type Entry, MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { eventually } from "../support/eventually.ts"
import {
  countsDelta,
  counterSum,
  dialVictim,
  fuzzSeed,
  inboundCounts,
  knownRawPeer,
  legitFlow,
  MIN_ELECTION_TIMEOUT_MS,
  prng,
  VICTIM,
  victimAndPeer
} from "../support/hostile.ts"
import { emptyExpected, expectGrpcCall, expectIrohStream } from "../support/hostile-model.ts"
import { streamMetadata } from "../support/grpc-raw.ts"

const INPUTS = 1000
const ATTACKER = 9
const MAX_FRAME = 64 * 1024
const MAX_MESSAGE = 64 * 1024
const limits = { max_message_entries: 64, max_batch_messages: 32, max_batch_entries: 256 }
const decodeLimits = { maxMessageEntries: 64, maxBatchMessages: 32, maxBatchEntries: 256 }

type Rng = ReturnType<typeof prng>

const messageTypes = Object.values(MessageType).filter((t) => t !== MessageType.Snapshot)

/** A plausible message, sometimes from or to the wrong node, never a snapshot. */
const message = (rng: Rng): RaftMessage => {
  const entries: Array<Entry> = Array.from({ length: rng.int(4) }, (_, i) => ({ term: 1, index: i + 1, data: rng.bytes(rng.int(16)) }))
  return {
    msgType: messageTypes[rng.int(messageTypes.length)]!,
    from: rng.int(10) === 0 ? 3 : ATTACKER,
    to: rng.int(10) === 0 ? 4 : VICTIM,
    term: rng.int(5),
    index: rng.int(100),
    commit: rng.int(100),
    entries
  }
}

const mutate = (rng: Rng, bytes: Uint8Array): Uint8Array => {
  const out = Uint8Array.from(bytes)
  switch (rng.int(4)) {
    case 0: // flip bytes
      for (let i = 0, n = 1 + rng.int(4); i < n && out.length > 0; i++) out[rng.int(out.length)] = rng.int(256)
      return out
    case 1: // truncate
      return out.subarray(0, rng.int(out.length + 1))
    case 2: // trailing garbage
      return Uint8Array.from([...out, ...rng.bytes(1 + rng.int(8))])
    default:
      return out
  }
}

/** An Iroh stream's bytes: a class preamble (or not) and frames (or not quite). */
const irohInput = (rng: Rng): Uint8Array => {
  const cls = rng.int(3) as PriorityClass
  const lead = preamble(cls)
  switch (rng.int(6)) {
    case 0:
      return rng.bytes(1 + rng.int(40))
    case 1:
      return Uint8Array.from([...lead, ...rng.bytes(rng.int(60))])
    case 2:
      return Uint8Array.from([...lead, ...mutate(rng, encodeFrames(Array.from({ length: 1 + rng.int(3) }, () => encodeMessage(message(rng)))))])
    case 3:
      return Uint8Array.from([...lead, 0xff, 0xff, 0xff, rng.int(256), ...rng.bytes(8)])
    case 4: // more entries than a message may hold, each two bytes on the wire
      return encodeFrames([Uint8Array.from({ length: 2 * (limits.max_message_entries + 1 + rng.int(50)) }, (_, i) => (i % 2 === 0 ? 0x3a : 0))], lead)
    default:
      return encodeFrames(Array.from({ length: 1 + rng.int(3) }, () => encodeMessage(message(rng))), lead)
  }
}

/** A gRPC call's batches. */
const grpcInput = (rng: Rng): ReadonlyArray<Uint8Array> =>
  Array.from({ length: 1 + rng.int(2) }, () => {
    switch (rng.int(6)) {
      case 0:
        return rng.bytes(1 + rng.int(60))
      case 1:
        return mutate(rng, encodeMessageBatch(Array.from({ length: 1 + rng.int(4) }, () => encodeMessage(message(rng)))))
      case 2: // more messages than a batch may hold, two bytes each
        return Uint8Array.from({ length: 2 * (limits.max_batch_messages + 1 + rng.int(20)) }, (_, i) => (i % 2 === 0 ? 0x0a : 0))
      case 3: // more entries than a batch may hold, within the per-message cap
        return encodeMessageBatch(Array.from({ length: 5 }, () => encodeMessage({ msgType: MessageType.Append, from: ATTACKER, to: VICTIM, entries: Array.from({ length: 60 }, (_, i) => ({ term: 1, index: i })) })))
      case 4:
        return rng.int(20) === 0 ? rng.bytes(MAX_MESSAGE + 1) : encodeMessageBatch([encodeMessage(message(rng))])
      default:
        return encodeMessageBatch(Array.from({ length: 1 + rng.int(4) }, () => encodeMessage(message(rng))))
    }
  })

const dropsOf = (transport: string) =>
  Effect.gen(function*() {
    const out: Record<string, number> = {}
    for (const reason of ["forged_from", "misaddressed", "wrong_class"]) {
      out[reason] = yield* counterSum(M.messagesDropped, { transport, peer: String(ATTACKER), reason })
    }
    return out
  })

const victimConfig = {
  max_frame_bytes: MAX_FRAME,
  grpc_config: { max_message_bytes: MAX_MESSAGE },
  batching: { max_batch: 32, snapshot_chunk_bytes: 4096 },
  // The fuzz checks decoding and counting; streams are not the limit under test here.
  limits: { ...limits, max_streams_per_connection: 4 * INPUTS }
}

describe("hostile peer: seeded fuzz", () => {
  it.live(`Iroh: ${INPUTS} crafted and random streams are each counted as the model says; the legitimate peer keeps flowing`, () =>
    Effect.gen(function*() {
      const seed = fuzzSeed()
      const rng = prng(seed)
      const { victim, legit } = yield* victimAndPeer("iroh", victimConfig)
      const raw = yield* knownRawPeer(victim, ATTACKER)

      const before = { counts: yield* inboundCounts("iroh"), drops: yield* dropsOf("iroh") }
      const expected = emptyExpected()
      const flow = yield* legitFlow(legit, victim)
      const conn = yield* dialVictim(raw, victim)
      for (let i = 0; i < INPUTS; i++) {
        const bytes = irohInput(rng)
        expectIrohStream(bytes, { self: VICTIM, peer: ATTACKER, maxFrameBytes: MAX_FRAME, maxMessageEntries: limits.max_message_entries }, expected)
        yield* Effect.promise(async () => {
          const stream = await conn.openUni()
          // The victim may stop the stream before all is written: that is its answer, not ours to report.
          await stream.writeAll(Array.from(bytes)).catch(() => undefined)
          await stream.finish().catch(() => undefined)
        })
      }
      yield* eventually(
        `inbound error counts (seed ${seed})`,
        Effect.map(inboundCounts("iroh"), (now) => countsDelta(before.counts, now)),
        (delta) => JSON.stringify(sorted(delta)) === JSON.stringify(sorted(expected.errors)),
        30_000
      )
      const report = yield* flow.stop
      const drops = countsDelta(before.drops, yield* dropsOf("iroh"))
      expect(sorted(drops)).toEqual(sorted(expected.drops))
      expect(report.others.filter((m) => m.from === ATTACKER).length).toBe(expected.delivered)
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
      expect(Object.values(expected.errors).reduce((a, b) => a + b, 0)).toBeGreaterThan(INPUTS / 2)
    }).pipe(Effect.scoped), { timeout: 180_000 })

  it.live(`gRPC: ${INPUTS} crafted and random calls are each answered and counted as the model says`, () =>
    Effect.gen(function*() {
      const seed = fuzzSeed() + 1
      const rng = prng(seed)
      const { victim, legit } = yield* victimAndPeer("grpc", victimConfig)
      // The attacker is in the table (its address leads nowhere: only its calls matter).
      yield* victim.addPeer({ id: ATTACKER, irohAddresses: [], grpcAddress: "127.0.0.1:9" })

      const before = { counts: yield* inboundCounts("grpc"), drops: yield* dropsOf("grpc") }
      const expected = emptyExpected()
      const flow = yield* legitFlow(legit, victim)
      const client = new grpc.Client(victim.localAddress().grpc!.address, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        "grpc.max_send_message_length": -1
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      let mismatches = 0
      for (let i = 0; i < INPUTS; i++) {
        const cls = rng.int(3) as PriorityClass
        const batches = grpcInput(rng)
        const want = expectGrpcCall(batches, cls, { self: VICTIM, peer: ATTACKER, maxMessageBytes: MAX_MESSAGE, limits: decodeLimits }, expected)
        const got = yield* call(client, cls, batches)
        if (want.ok ? !(got.ok && got.received === want.ackReceived) : got.ok) mismatches++
      }
      expect(mismatches).toBe(0)
      yield* eventually(
        `inbound error counts (seed ${seed})`,
        Effect.map(inboundCounts("grpc"), (now) => countsDelta(before.counts, now)),
        (delta) => JSON.stringify(sorted(delta)) === JSON.stringify(sorted(expected.errors)),
        30_000
      )
      const report = yield* flow.stop
      expect(sorted(countsDelta(before.drops, yield* dropsOf("grpc")))).toEqual(sorted(expected.drops))
      expect(report.others.filter((m) => m.from === ATTACKER).length).toBe(expected.delivered)
      expect(report.maxGapMs).toBeLessThan(MIN_ELECTION_TIMEOUT_MS)
    }).pipe(Effect.scoped), { timeout: 180_000 })
})

const sorted = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== 0).sort())

/** One `Stream` call as the attacker (node 9) on a shared client: ok with the Ack's count, or not. */
const call = (client: grpc.Client, cls: PriorityClass, batches: ReadonlyArray<Uint8Array>) =>
  Effect.callback<{ readonly ok: boolean; readonly received: number }>((resume) => {
    const md = new grpc.Metadata()
    for (const [k, v] of Object.entries(streamMetadata("default", ATTACKER, VICTIM, cls))) md.set(k, v)
    const c = client.makeClientStreamRequest<Buffer, Ack>(STREAM_PATH, passThrough, decodeAck, md, {}, (error, ack) => {
      resume(Effect.succeed(error !== null ? { ok: false, received: 0 } : { ok: true, received: ack?.received ?? -1 }))
    })
    c.on("error", () => {})
    for (const b of batches) c.write(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
    c.end()
  })
