import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, PubSub, Scope } from "effect"
import * as net from "node:net"
import { encodeMessageBatch, messageBatchLength, splitBatches, varintLength } from "../../src/grpc/batch-encoding.ts"
import { makeGrpcLink } from "../../src/grpc/link.ts"
import { type GrpcServer, runGrpcServer } from "../../src/grpc/server.ts"
import { MetadataKey } from "../../src/grpc/service-definition.ts"
import { decodeBatch, encodeBatch, encodeMessage } from "../../src/message/codec.ts"
import { MessageType, type NodeId, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { fixedRoute, PeerActor } from "../../src/peer/actor.ts"
import type { ClassQueueOptions } from "../../src/peer/outbound-queue.ts"
import type { TransportEvent } from "../../src/domain/events.ts"
import { InboundMailbox } from "../../src/inbound/inbound-mailbox.ts"
import { PeerTable } from "../../src/domain/peer-table.ts"
import { append, heartbeat, vote } from "../support/network-cluster.ts"
import { counter } from "../support/metrics.ts"
import { rawStream } from "../support/grpc-raw.ts"

const CLUSTER = "grpc-test"
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024

const queues: ReadonlyArray<ClassQueueOptions> = [
  { capacity: 256, overflow: "drop_oldest" },
  { capacity: 1024, overflow: "drop_oldest" },
  { capacity: 8192, overflow: "drop_newest" },
  { capacity: 64, overflow: "drop_newest" }
]

interface Node {
  readonly id: NodeId
  readonly peers: PeerTable
  readonly mailbox: InboundMailbox
  readonly events: PubSub.PubSub<TransportEvent>
  server: GrpcServer
}

interface NodeOptions {
  readonly bindAddress?: string
  readonly token?: string
}

const serve = (node: Omit<Node, "server">, options: NodeOptions = {}) =>
  runGrpcServer({
    bindAddress: options.bindAddress ?? "127.0.0.1:0",
    self: node.id,
    clusterId: CLUSTER,
    token: options.token,
    peers: node.peers,
    mailbox: node.mailbox,
    maxMessageBytes: MAX_MESSAGE_BYTES,
    maxSnapshotBytes: 64 * 1024 * 1024,
    shutdownGraceMs: 200
  }).pipe(Effect.orDie)

const startNode = (id: NodeId, options: NodeOptions = {}) =>
  Effect.gen(function*() {
    const base = {
      id,
      peers: new PeerTable(id),
      mailbox: yield* InboundMailbox.make(8192),
      events: yield* PubSub.sliding<TransportEvent>(1024)
    }
    const node: Node = { ...base, server: yield* serve(base, options) }
    return node
  })

/** Tells `node` where `other` listens. */
const meet = (node: Node, other: Node) =>
  node.peers.set({ id: other.id, irohAddresses: [], grpcAddress: other.server.address })

/** `from`'s actor for `to`, with a gRPC link as its only link. */
const actorTo = (from: Node, to: NodeId, token?: string) =>
  PeerActor.make({
    peer: to,
    queues,
    maxBatch: 100,
    maxBatchBytes: 65536,
    maxAgeMs: 30_000,
    maxFrameBytes: 16 * 1024 * 1024,
    snapshotChunkBytes: 65536,
    snapshotAttempts: 3,
    backoff: { initialMs: 20, maxMs: 300, jitter: 0.2 },
    links: [
      makeGrpcLink({
        self: from.id,
        peer: to,
        address: () => from.peers.get(to)?.grpcAddress,
        clusterId: CLUSTER,
        token,
        connectTimeoutMs: 5000,
        maxMessageBytes: MAX_MESSAGE_BYTES
      })
    ],
    routes: fixedRoute("grpc"),
    events: from.events
  })

/** Two nodes that know each other, with an actor each way. */
const pair = (options: NodeOptions = {}) =>
  Effect.gen(function*() {
    const a = yield* startNode(1, options)
    const b = yield* startNode(2, options)
    meet(a, b)
    meet(b, a)
    const ab = yield* actorTo(a, 2, options.token)
    const ba = yield* actorTo(b, 1, options.token)
    return { a, b, ab, ba }
  })

const receiveN = (node: Node, n: number) =>
  Effect.gen(function*() {
    const out: Array<RaftMessage> = []
    while (out.length < n) out.push(...(yield* node.mailbox.receiveBatch(n - out.length)))
    return out
  })

const goodMetadata = (from: NodeId, to: NodeId): Record<string, string> => ({
  [MetadataKey.Cluster]: CLUSTER,
  [MetadataKey.From]: String(from),
  [MetadataKey.To]: String(to),
  [MetadataKey.Class]: "2"
})

describe("gRPC batch encoding", () => {
  it("builds the same MessageBatch protobufjs would, from encoded payloads", () => {
    const messages: Array<RaftMessage> = [
      heartbeat(1, 2),
      append(1, 2, 7, 100), // payload over 127 bytes: two-byte varint
      append(1, 2, 8, 20_000), // three-byte varint
      vote(2, 1, 9)
    ]
    const payloads = messages.map(encodeMessage)
    const batch = encodeMessageBatch(payloads)
    expect(batch.length).toBe(messageBatchLength(payloads))
    expect(Uint8Array.from(batch)).toEqual(Uint8Array.from(encodeBatch(messages)))
    const decoded = decodeBatch(batch)
    expect(decoded.map((m) => [m.msgType, m.from, m.to, m.index ?? 0])).toEqual(
      messages.map((m) => [m.msgType, m.from, m.to, m.index ?? 0])
    )
    expect(decoded[2]!.entries![0]!.data!.length).toBe(20_000)
    expect(decodeBatch(encodeMessageBatch([]))).toEqual([])
  })

  it("varint lengths and batch splitting", () => {
    expect([0, 127, 128, 16_383, 16_384, 2 ** 21, 2 ** 32].map(varintLength)).toEqual([1, 1, 2, 2, 3, 4, 5])
    const payloads = Array.from({ length: 10 }, () => new Uint8Array(100)) // 102 bytes each in a batch
    const { batches, oversize } = splitBatches([...payloads, new Uint8Array(600)], 500)
    expect(oversize).toBe(1)
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2])
    for (const b of batches) expect(messageBatchLength(b)).toBeLessThanOrEqual(500)
  })
})

describe("gRPC transport", () => {
  it.live("delivers in both directions", () =>
    Effect.gen(function*() {
      const { a, ab, b, ba } = yield* pair()
      yield* ab.send(append(1, 2, 1))
      yield* ba.send(append(2, 1, 1))
      const atB = yield* receiveN(b, 1).pipe(Effect.timeout("20 seconds"))
      const atA = yield* receiveN(a, 1).pipe(Effect.timeout("20 seconds"))
      expect(atB[0]).toMatchObject({ msgType: MessageType.Append, from: 1, to: 2, index: 1 })
      expect(atA[0]).toMatchObject({ msgType: MessageType.Append, from: 2, to: 1, index: 1 })
      // The probe has measured the link.
      yield* Effect.sleep("1200 millis")
      const rtt = ab.status().links[0]?.rttMs
      expect(rtt).toBeGreaterThan(0)
      expect(rtt).toBeLessThan(1000)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("keeps order within a class over 2,000 appends", () =>
    Effect.gen(function*() {
      const { ab, b } = yield* pair()
      const n = 2000
      for (let i = 1; i <= n; i++) yield* ab.send(append(1, 2, i, 16))
      const got = yield* receiveN(b, n).pipe(Effect.timeout("30 seconds"))
      expect(got.map((m) => m.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("a vote sent after 1,000 queued appends is received before most of them", () =>
    Effect.gen(function*() {
      const { ab, b } = yield* pair()
      // Warm the link so the test measures priority, not the handshake.
      yield* ab.send(heartbeat(1, 2))
      yield* receiveN(b, 1).pipe(Effect.timeout("20 seconds"))
      for (let i = 1; i <= 1000; i++) yield* ab.send(append(1, 2, i, 64))
      yield* ab.send(vote(1, 2))
      const got = yield* receiveN(b, 1001).pipe(Effect.timeout("30 seconds"))
      const position = got.findIndex((m) => m.msgType === MessageType.RequestVote)
      expect(position).toBeGreaterThanOrEqual(0)
      expect(position).toBeLessThan(500)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("a 2 MB snapshot arrives whole", () =>
    Effect.gen(function*() {
      const { ab, b } = yield* pair()
      const snapshots = counter(M.snapshotsReceived, { peer: "1", transport: "grpc" })
      const before = yield* snapshots
      const data = new Uint8Array(2 * 1024 * 1024)
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >>> 11)) & 0xff
      yield* ab.send({
        msgType: MessageType.Snapshot,
        from: 1,
        to: 2,
        term: 3,
        snapshot: { data, metadata: { index: 500, term: 3, confState: { voters: [1, 2] } } }
      })
      const [got] = yield* receiveN(b, 1).pipe(Effect.timeout("30 seconds"))
      expect(got!.msgType).toBe(MessageType.Snapshot)
      expect(got!.snapshot!.metadata).toMatchObject({ index: 500, term: 3 })
      expect(got!.snapshot!.data.length).toBe(data.length)
      expect(Buffer.from(got!.snapshot!.data).equals(Buffer.from(data))).toBe(true)
      expect((yield* snapshots) - before).toBe(1)
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("refuses calls with the wrong cluster id, token, peer or payload, and counts them", () =>
    Effect.gen(function*() {
      const token = "s3cret"
      const { b } = yield* pair({ token })
      const address = b.server.address
      const refused = (reason: string) => counter(M.inboundRefused, { transport: "grpc", reason })
      const good = { ...goodMetadata(1, 2), [MetadataKey.Token]: token }
      const batch = encodeMessageBatch([encodeMessage(append(1, 2, 1))])

      const cluster0 = yield* refused("wrong_cluster")
      const wrongCluster = yield* rawStream(address, { ...good, [MetadataKey.Cluster]: "other" }, [batch])
      expect(wrongCluster).toEqual({ _tag: "Error", code: grpc.status.UNAUTHENTICATED })
      expect(yield* refused("wrong_cluster")).toBe(cluster0 + 1)

      const token0 = yield* refused("bad_token")
      const wrongToken = yield* rawStream(address, { ...good, [MetadataKey.Token]: "guess" }, [batch])
      expect(wrongToken).toEqual({ _tag: "Error", code: grpc.status.UNAUTHENTICATED })
      const { [MetadataKey.Token]: _, ...noToken } = good
      const missingToken = yield* rawStream(address, noToken, [batch])
      expect(missingToken).toEqual({ _tag: "Error", code: grpc.status.UNAUTHENTICATED })
      expect(yield* refused("bad_token")).toBe(token0 + 2)

      const peer0 = yield* refused("unknown_peer")
      const stranger = yield* rawStream(address, { ...good, [MetadataKey.From]: "9" }, [batch])
      expect(stranger).toEqual({ _tag: "Error", code: grpc.status.PERMISSION_DENIED })
      expect(yield* refused("unknown_peer")).toBe(peer0 + 1)

      const meta0 = yield* refused("bad_metadata")
      const wrongTo = yield* rawStream(address, { ...good, [MetadataKey.To]: "3" }, [batch])
      const badClass = yield* rawStream(address, { ...good, [MetadataKey.Class]: "7" }, [batch])
      expect([wrongTo, badClass]).toEqual([
        { _tag: "Error", code: grpc.status.INVALID_ARGUMENT },
        { _tag: "Error", code: grpc.status.INVALID_ARGUMENT }
      ])
      expect(yield* refused("bad_metadata")).toBe(meta0 + 2)

      const decode0 = yield* counter(M.inboundErrors, { transport: "grpc", kind: "decode_failed" })
      const garbage = yield* rawStream(address, good, [Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2])])
      expect(garbage).toEqual({ _tag: "Error", code: grpc.status.INVALID_ARGUMENT })
      expect(yield* counter(M.inboundErrors, { transport: "grpc", kind: "decode_failed" })).toBe(decode0 + 1)

      // The right metadata is accepted, and the message delivered and acknowledged.
      const accepted = yield* rawStream(address, good, [batch])
      expect(accepted).toEqual({ _tag: "Ack", ack: { received: 1 } })
      const [got] = yield* receiveN(b, 1).pipe(Effect.timeout("10 seconds"))
      expect(got).toMatchObject({ from: 1, to: 2, index: 1 })

      // A link with the wrong token fails to connect (its first ping is refused).
      const bad = makeGrpcLink({
        self: 1,
        peer: 2,
        address: () => address,
        clusterId: CLUSTER,
        token: "guess",
        connectTimeoutMs: 5000,
        maxMessageBytes: MAX_MESSAGE_BYTES
      })
      const failure = yield* Effect.flip(Effect.scoped(bad.connect))
      expect(failure._tag).toBe("ConnectFailed")
      expect(failure.message).toContain("UNAUTHENTICATED")
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("a receiver that does not read slows the sender down; nothing is lost", () =>
    Effect.gen(function*() {
      const peers = new PeerTable(2)
      peers.set({ id: 1, irohAddresses: [] })
      const base = { id: 2, peers, mailbox: yield* InboundMailbox.make(10), events: yield* PubSub.sliding<TransportEvent>(16) }
      const server = yield* serve(base)
      const link = makeGrpcLink({
        self: 1,
        peer: 2,
        address: () => server.address,
        clusterId: CLUSTER,
        connectTimeoutMs: 5000,
        maxMessageBytes: MAX_MESSAGE_BYTES
      })
      const session = yield* link.connect
      const n = 5000
      let written = 0
      const writer = yield* Effect.forkChild(
        Effect.gen(function*() {
          for (let i = 0; i < n; i += 100) {
            const payloads = Array.from({ length: 100 }, (_, j) => encodeMessage(append(1, 2, i + j + 1, 1024)))
            yield* session.write(2, payloads, 0)
            written += 100
          }
        })
      )
      yield* Effect.sleep("1 second")
      // Mailbox (10), paused call, HTTP/2 windows and grpc-js buffers hold some; the rest waits.
      expect(written).toBeLessThan(n)
      const got: Array<RaftMessage> = []
      while (got.length < n) got.push(...(yield* base.mailbox.receiveBatch(1000).pipe(Effect.timeout("10 seconds"))))
      yield* Fiber.join(writer)
      expect(got.map((m) => m.index)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("the probe reports a dark path (a proxy that stops forwarding) as closed", () =>
    Effect.gen(function*() {
      const b = yield* startNode(2)
      b.peers.set({ id: 1, irohAddresses: [] })
      // A TCP proxy that can go silent without closing anything, like a path that drops packets.
      let dark = false
      const sockets: Array<net.Socket> = []
      const proxy = net.createServer((downstream) => {
        const upstream = net.connect(b.server.port, "127.0.0.1")
        sockets.push(downstream, upstream)
        downstream.on("data", (d: Buffer) => dark || upstream.write(d))
        upstream.on("data", (d: Buffer) => dark || downstream.write(d))
        downstream.on("error", () => upstream.destroy())
        upstream.on("error", () => downstream.destroy())
      })
      const proxyPort = yield* Effect.acquireRelease(
        Effect.callback<number>((resume) => {
          proxy.listen(0, "127.0.0.1", () => resume(Effect.succeed((proxy.address() as net.AddressInfo).port)))
        }),
        () =>
          Effect.sync(() => {
            for (const s of sockets) s.destroy()
            proxy.close()
          })
      )
      const link = makeGrpcLink({
        self: 1,
        peer: 2,
        address: () => `127.0.0.1:${proxyPort}`,
        clusterId: CLUSTER,
        connectTimeoutMs: 5000,
        maxMessageBytes: MAX_MESSAGE_BYTES,
        probeIntervalMs: 200,
        probeTimeoutMs: 300
      })
      const session = yield* link.connect
      yield* Effect.sleep("500 millis")
      expect(session.rttMs()).toBeGreaterThan(0)
      dark = true
      const started = Date.now()
      const reason = yield* session.closed.pipe(Effect.timeout("10 seconds"))
      expect(reason).toContain("3 consecutive probes failed")
      expect(Date.now() - started).toBeLessThan(5000)
      const written = yield* Effect.flip(session.write(2, [encodeMessage(append(1, 2, 1))], 0))
      expect(written._tag).toBe("StreamFailed")
    }).pipe(Effect.scoped), { timeout: 60_000 })

  it.live("reconnects after the peer's server restarts on the same port", () =>
    Effect.gen(function*() {
      const a = yield* startNode(1)
      const bBase = {
        id: 2,
        peers: new PeerTable(2),
        mailbox: yield* InboundMailbox.make(8192),
        events: yield* PubSub.sliding<TransportEvent>(16)
      }
      const firstScope = yield* Scope.make()
      const b: Node = { ...bBase, server: yield* serve(bBase).pipe(Scope.provide(firstScope)) }
      meet(a, b)
      meet(b, a)
      const events = yield* PubSub.subscribe(a.events)
      const ab = yield* actorTo(a, 2)

      yield* ab.send(append(1, 2, 1))
      expect((yield* receiveN(b, 1).pipe(Effect.timeout("20 seconds")))[0]!.index).toBe(1)

      const port = b.server.port
      yield* Scope.close(firstScope, Exit.void)
      // The link notices the lost connection on its own.
      while ((yield* PubSub.take(events).pipe(Effect.timeout("10 seconds")))._tag !== "Disconnected") {
        // skip Connected
      }
      const restarted = yield* serve(bBase, { bindAddress: `127.0.0.1:${port}` })
      expect(restarted.port).toBe(port)

      yield* ab.send(append(1, 2, 2))
      const [got] = yield* receiveN(b, 1).pipe(Effect.timeout("20 seconds"))
      expect(got).toMatchObject({ from: 1, to: 2, index: 2 })
      expect(ab.status().links[0]?.state).toBe("connected")
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
