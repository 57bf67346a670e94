import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect } from "effect"
import { encodeMessageBatch } from "../../src/grpc/batch-encoding.ts"
import { runGrpcServer } from "../../src/grpc/server.ts"
import { ALPN } from "../../src/iroh/protocol.ts"
import { decodeMessage, encodeMessage } from "../../src/message/codec.ts"
import { encodeFramesToArray, preamble } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { snapshotChunks } from "../../src/message/snapshot-chunks.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { InboundMailbox } from "../../src/inbound/inbound-mailbox.ts"
import { PeerTable } from "../../src/domain/peer-table.ts"
import { append, receiveN, startCluster } from "../support/network-cluster.ts"
import { counter } from "../support/metrics.ts"
import { rawStream, streamMetadata } from "../support/grpc-raw.ts"
import { rawIrohEndpoint } from "../support/raw-iroh.ts"

const { EndpointAddr, EndpointId } = iroh

/**
 * protobufjs decodes an absent sub-message as `null` unless told otherwise, while the message
 * model (and the snapshot reassembler) expect `undefined`. A message without a `snapshot` on the
 * snapshot stream -- any non-snapshot message there -- used to throw a TypeError in the
 * reassembler: on gRPC an unhandled rejection (fatal for a Node process), on Iroh a reader
 * fiber that died silently, leaving the stream unread. Such a message is now refused before
 * reassembly (`wrong_class`), and the stream goes on.
 */

/** A 3-chunk snapshot from `from` to `to`, as the sender's actor splits it. */
const threeChunks = (from: number, to: number): ReadonlyArray<RaftMessage> => [
  ...snapshotChunks(
    {
      msgType: MessageType.Snapshot,
      from,
      to,
      term: 1,
      snapshot: { data: Uint8Array.from({ length: 10 }, (_, i) => i), metadata: { index: 5, term: 1, confState: { voters: [1, 2] } } }
    },
    4,
    1
  )
]

describe("decoding absent sub-messages", () => {
  it("decodes an absent snapshot, metadata or conf state as undefined, as the model says", () => {
    const plain = decodeMessage(encodeMessage(append(1, 2, 1)))
    expect(plain.snapshot).toBeUndefined()
    const bare = decodeMessage(encodeMessage({ msgType: MessageType.Snapshot, from: 1, to: 2, snapshot: { data: new Uint8Array(0) } }))
    expect(bare.snapshot).toBeDefined()
    expect(bare.snapshot!.metadata).toBeUndefined()
    const noConf = decodeMessage(
      encodeMessage({ msgType: MessageType.Snapshot, from: 1, to: 2, snapshot: { data: new Uint8Array(0), metadata: { index: 1, term: 1 } } })
    )
    expect(noConf.snapshot!.metadata!.confState).toBeUndefined()
  })
})

const wrongClass = (peer: string, transport: string) =>
  counter(M.messagesDropped, { peer, class: "snapshot", transport, reason: "wrong_class" })

describe("a message of another class on the snapshot stream", () => {
  it.live("gRPC: is dropped and counted, and the snapshot after it still arrives whole", () =>
    Effect.gen(function*() {
      const peers = new PeerTable(2)
      peers.set({ id: 1, irohAddresses: [] })
      const mailbox = yield* InboundMailbox.make(16)
      const server = yield* runGrpcServer({
        bindAddress: "127.0.0.1:0",
        self: 2,
        clusterId: "mismatch",
        peers,
        mailbox,
        maxMessageBytes: 1 << 20,
        maxSnapshotBytes: 1 << 20,
        shutdownGraceMs: 200
      }).pipe(Effect.orDie)
      const batches = [
        encodeMessageBatch([encodeMessage(append(1, 2, 7))]),
        encodeMessageBatch(threeChunks(1, 2).map(encodeMessage))
      ]
      const outcome = yield* rawStream(server.address, streamMetadata("mismatch", 1, 2, PriorityClass.Snapshot), batches)
      // The Ack counts what was delivered: the snapshot, reassembled from three chunks; not the
      // append dropped as wrong_class.
      expect(outcome).toEqual({ _tag: "Ack", ack: { received: 1 } })
      const got = yield* mailbox.receiveBatch(2).pipe(Effect.timeout("10 seconds"))
      expect(got.map((m) => m.msgType)).toEqual([MessageType.Snapshot])
      expect(Array.from(got[0]!.snapshot!.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(yield* wrongClass("1", "grpc")).toBe(1)
    }).pipe(Effect.scoped), { timeout: 30_000 })

  it.live("Iroh: is dropped and counted, and the snapshot after it still arrives whole", () =>
    Effect.gen(function*() {
      const [a] = yield* startCluster(1)
      const raw = yield* rawIrohEndpoint
      yield* a!.addPeer({ id: 9, irohEndpointId: raw.id().toString(), irohAddresses: [] })
      const address = a!.localAddress().iroh!
      const conn = yield* Effect.promise(() =>
        raw.connect(new EndpointAddr(EndpointId.fromString(address.endpointId), null, [...address.addresses]), ALPN)
      )
      const stream = yield* Effect.promise(() => conn.openUni())
      const frames = [append(9, 1, 7), ...threeChunks(9, 1)].map(encodeMessage)
      yield* Effect.promise(() => stream.writeAll(encodeFramesToArray(frames, preamble(PriorityClass.Snapshot))))
      const got = yield* receiveN(a!, 1).pipe(Effect.timeout("20 seconds"))
      expect(got.map((m) => m.msgType)).toEqual([MessageType.Snapshot])
      expect(Array.from(got[0]!.snapshot!.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(yield* wrongClass("9", "iroh")).toBe(1)
    }).pipe(Effect.scoped), { timeout: 30_000 })
})
