/**
 * Compression and wire versions between real transports on loopback: a node that compresses
 * talks to one that does not, and to one that speaks only wire version 1 (an older node),
 * in both directions.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { makeRaftTransport } from "../../src/transport/service.ts"
import { addressOf, irohNodeConfig, receiveN, tempDir, vote } from "../support/network-cluster.ts"
import { counter } from "../support/metrics.ts"

const record = (i: number) =>
  new TextEncoder().encode(JSON.stringify({ id: i, name: `user ${i}`, email: `user${i}@example.com`, balance: i * 3.25 }))

const appends = (from: number, to: number, n: number, data: (i: number) => Uint8Array): Array<RaftMessage> =>
  Array.from({ length: n }, (_, i) => ({
    msgType: MessageType.Append,
    from,
    to,
    term: 1,
    index: i,
    logTerm: 1,
    commit: 0,
    entries: [{ term: 1, index: i + 1, data: data(i) }]
  }))

const snapshot = (from: number, to: number, data: Uint8Array): RaftMessage => ({
  msgType: MessageType.Snapshot,
  from,
  to,
  term: 1,
  snapshot: { data, metadata: { index: 10, term: 1, confState: { voters: [from, to] } } }
})

const bytesOf = (cls: string) =>
  Effect.all({
    framed: counter(M.compressionFramedBytes, { class: cls, transport: "iroh" }),
    wire: counter(M.compressionWireBytes, { class: cls, transport: "iroh" })
  })

/** Sends a vote, 300 appends and a 256 KiB snapshot from `a` to `b`; checks what arrives, byte for byte. */
const exchange = (a: RaftTransportService, b: RaftTransportService, data: (i: number) => Uint8Array) =>
  Effect.gen(function*() {
    const sentAppends = appends(a.nodeId, b.nodeId, 300, data)
    const image = new TextEncoder().encode(Array.from({ length: 4000 }, (_, i) => JSON.stringify({ k: `key${i}`, v: i })).join(","))
    const sent = [vote(a.nodeId, b.nodeId), ...sentAppends, snapshot(a.nodeId, b.nodeId, image)]
    for (const m of sent) yield* a.send(b.nodeId, m)
    const got = yield* receiveN(b, sent.length)
    expect(got.filter((m) => m.msgType === MessageType.RequestVote)).toHaveLength(1)
    const gotAppends = got.filter((m) => m.msgType === MessageType.Append)
    expect(gotAppends.map((m) => m.index)).toEqual(sentAppends.map((m) => m.index))
    for (const i of [0, 150, 299]) expect(Uint8Array.from(gotAppends[i]!.entries![0]!.data!)).toEqual(Uint8Array.from(data(i)))
    const gotSnapshot = got.find((m) => m.msgType === MessageType.Snapshot)
    expect(Uint8Array.from(gotSnapshot!.snapshot!.data!)).toEqual(image)
  })

/** The append and snapshot bytes `run` put through compressing (version 2) writes: framed and on the wire. */
const measured = <E, R>(run: Effect.Effect<void, E, R>) =>
  Effect.gen(function*() {
    const before = { append: yield* bytesOf("append"), snapshot: yield* bytesOf("snapshot") }
    yield* run
    const after = { append: yield* bytesOf("append"), snapshot: yield* bytesOf("snapshot") }
    const delta = (cls: "append" | "snapshot") => ({
      framed: after[cls].framed - before[cls].framed,
      wire: after[cls].wire - before[cls].wire
    })
    return { append: delta("append"), snapshot: delta("snapshot") }
  })

const pair = (configA: Record<string, unknown>, configB: Record<string, unknown>, versionsB?: ReadonlyArray<1 | 2 | 3>) =>
  Effect.gen(function*() {
    const dir = tempDir()
    const a = yield* makeRaftTransport(yield* irohNodeConfig(1, dir, configA)).pipe(Effect.orDie)
    const b = yield* makeRaftTransport(
      yield* irohNodeConfig(2, dir, configB),
      versionsB === undefined ? {} : { irohWireVersions: versionsB }
    ).pipe(Effect.orDie)
    yield* a.addPeer(addressOf(b))
    yield* b.addPeer(addressOf(a))
    return { a, b }
  })

// Large enough that the actor writes appends in batches above `min_batch_bytes`.
const batching = { batching: { max_linger_ms: 0 } }

describe("Iroh compression between mixed nodes", () => {
  it.live("a node with compression and a node without exchange messages both ways; only the first compresses", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* pair(batching, { ...batching, compression: { algorithm: "none" } })
      /** Snapshot chunks written to `peer` so far. */
      const chunksTo = (peer: number) => counter(M.messagesSent, { peer: String(peer), class: "snapshot", transport: "iroh" })
      const aChunksBefore = yield* chunksTo(2)
      const aToB = yield* measured(exchange(a, b, record))
      expect(aToB.append.wire).toBeLessThan(aToB.append.framed / 2)
      expect(aToB.snapshot.wire).toBeLessThan(aToB.snapshot.framed / 2)
      // While chunks shrink they are compression.snapshot_chunk_bytes (16 KiB), not 4 KiB.
      expect((yield* chunksTo(2)) - aChunksBefore).toBeLessThanOrEqual(Math.ceil(aToB.snapshot.framed / 16384) + 1)
      const bChunksBefore = yield* chunksTo(1)
      const bToA = yield* measured(exchange(b, a, record))
      // The node that does not compress keeps the 4 KiB chunks of `batching.snapshot_chunk_bytes`.
      expect((yield* chunksTo(1)) - bChunksBefore).toBeGreaterThanOrEqual(Math.floor(bToA.snapshot.framed / 4200))
      // Version 2 blocks, uncompressed: only their headers added.
      expect(bToA.append.wire).toBeGreaterThan(bToA.append.framed)
      expect(bToA.snapshot.wire).toBeGreaterThan(bToA.snapshot.framed)
    })))

  it.live("compressed writes cross between a node running the binding in a worker thread and one on the main thread", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* pair({ ...batching, iroh_config: { worker_thread: true } }, batching)
      const aToB = yield* measured(exchange(a, b, record))
      expect(aToB.append.wire).toBeLessThan(aToB.append.framed / 2)
      const bToA = yield* measured(exchange(b, a, record))
      expect(bToA.snapshot.wire).toBeLessThan(bToA.snapshot.framed / 2)
    })))

  it.live("incompressible appends go as they are, counted, and the class then backs off", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* pair(batching, batching)
      const labels = { class: "append", transport: "iroh" }
      const before = {
        didNotShrink: yield* counter(M.batchesUncompressed, { ...labels, reason: "did_not_shrink" }),
        backingOff: yield* counter(M.batchesUncompressed, { ...labels, reason: "backing_off" })
      }
      const random = Array.from({ length: 300 }, () => randomBytes(1000))
      const bytes = yield* measured(Effect.gen(function*() {
        for (const m of appends(1, 2, 300, (i) => random[i]!)) yield* a.send(2, m)
        const got = yield* receiveN(b, 300)
        expect(Uint8Array.from(got[299]!.entries![0]!.data!)).toEqual(Uint8Array.from(random[299]!))
      }))
      // Uncompressed blocks: the wire carries the frames and a 6-byte header per write.
      expect(bytes.append.wire).toBeGreaterThan(bytes.append.framed)
      expect(yield* counter(M.batchesUncompressed, { ...labels, reason: "did_not_shrink" })).toBeGreaterThan(before.didNotShrink)
      expect(yield* counter(M.batchesUncompressed, { ...labels, reason: "backing_off" })).toBeGreaterThan(before.backingOff)
    })))

  it.live("a node of the newest wire version and one that speaks only version 1 exchange messages both ways, uncompressed", () =>
    Effect.scoped(Effect.gen(function*() {
      const { a, b } = yield* pair(batching, batching, [1])
      // B refuses the ALPNs it does not speak in the TLS handshake; each is counted as bad_alpn.
      const refusedBefore = yield* counter(M.inboundRefused, { transport: "iroh", reason: "bad_alpn" })
      // A dials version 3, then 2, is refused by B's handshake each time (an older node), and dials version 1.
      const aToB = yield* measured(exchange(a, b, record))
      const random = Array.from({ length: 300 }, (_, i) => randomBytes(64 + (i % 7)))
      const bToA = yield* measured(exchange(b, a, (i) => random[i]!))
      // Version 1 writes are not blocks: none of these bytes went through the block writer.
      expect(aToB).toEqual({ append: { framed: 0, wire: 0 }, snapshot: { framed: 0, wire: 0 } })
      expect(bToA).toEqual({ append: { framed: 0, wire: 0 }, snapshot: { framed: 0, wire: 0 } })
      expect(yield* counter(M.inboundRefused, { transport: "iroh", reason: "bad_alpn" })).toBe(refusedBefore + 2)
      expect(yield* counter(M.connectionFailures, { peer: "2", transport: "iroh", kind: "version_refused" })).toBe(2)
    })))
})
