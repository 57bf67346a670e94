import * as grpc from "@grpc/grpc-js"
import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect } from "effect"
import { encodeMessageBatch } from "../../src/grpc/batch-encoding.ts"
import { runGrpcServer } from "../../src/grpc/server.ts"
import { runAcceptor } from "../../src/iroh/acceptor.ts"
import { makeIrohEndpoint } from "../../src/iroh/endpoint.ts"
import { ALPN, ErrorCode } from "../../src/iroh/protocol.ts"
import { encodeMessage } from "../../src/message/codec.ts"
import { encodeFramesToArray, preamble } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import * as M from "../../src/metrics/metrics.ts"
import type { InboundMailbox } from "../../src/inbound/inbound-mailbox.ts"
import { PeerTable } from "../../src/domain/peer-table.ts"
import { append } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { counter } from "../support/metrics.ts"
import { rawStream, streamMetadata } from "../support/grpc-raw.ts"
import { rawIrohEndpoint } from "../support/raw-iroh.ts"

const deliveryFailed = (transport: string) => counter(M.inboundErrors, { transport, kind: "delivery_failed" })

const { EndpointAddr, EndpointId } = iroh

/** A mailbox whose every offer throws, standing in for any bug in inbound delivery. */
const throwingMailbox = () => {
  const counts = { offers: 0 }
  const mailbox = {
    offerAll: () => {
      counts.offers++
      throw new Error("injected delivery bug")
    }
  } as unknown as InboundMailbox
  return { counts, mailbox }
}

describe("inbound delivery failure", () => {
  // A bug anywhere in inbound delivery must not escape into grpc-js's data callback, where a
  // throw becomes an unhandled rejection (fatal for a Node process): it ends that call only.
  it.live("a delivery that throws ends that call with INTERNAL, and the server keeps serving", () =>
    Effect.gen(function*() {
      const peers = new PeerTable(2)
      peers.set({ id: 1, irohAddresses: [] })
      const { counts, mailbox: throwing } = throwingMailbox()
      const server = yield* runGrpcServer({
        bindAddress: "127.0.0.1:0",
        self: 2,
        clusterId: "failure",
        peers,
        mailbox: throwing,
        maxMessageBytes: 1 << 20,
        maxSnapshotBytes: 1 << 20,
        shutdownGraceMs: 200
      }).pipe(Effect.orDie)
      const before = yield* deliveryFailed("grpc")
      const call = rawStream(
        server.address,
        streamMetadata("failure", 1, 2, PriorityClass.Append),
        [encodeMessageBatch([encodeMessage(append(1, 2, 1))])]
      )
      expect(yield* call).toEqual({ _tag: "Error", code: grpc.status.INTERNAL })
      expect(yield* call).toEqual({ _tag: "Error", code: grpc.status.INTERNAL })
      expect(counts.offers).toBe(2)
      yield* eventually("delivery_failed counted twice", deliveryFailed("grpc"), (n) => n === before + 2, 5_000)
    }).pipe(Effect.scoped), { timeout: 30_000 })

  // On Iroh the reader fiber used to die silently, leaving the stream open and unread: its
  // sender stalls on flow control while probes on the same connection still succeed.
  it.live("Iroh: a delivery that throws stops that stream, which the sender sees", () =>
    Effect.gen(function*() {
      const endpoint = yield* makeIrohEndpoint({ bindAddress: "127.0.0.1:0", relayMode: { _tag: "disabled" }, workerThread: false }).pipe(Effect.orDie)
      const raw = yield* rawIrohEndpoint
      const peers = new PeerTable(2)
      peers.set({ id: 1, irohEndpointId: raw.id().toString(), irohAddresses: [] })
      const { counts, mailbox } = throwingMailbox()
      yield* runAcceptor({ endpoint, self: 2, peers, mailbox, maxFrameBytes: 1 << 20, maxSnapshotBytes: 1 << 20 })
      const conn = yield* Effect.promise(() =>
        raw.connect(new EndpointAddr(EndpointId.fromString(endpoint.endpointId), null, [...endpoint.directAddresses()]), ALPN)
      )
      const before = yield* deliveryFailed("iroh")
      const stream = yield* Effect.promise(() => conn.openUni())
      yield* Effect.promise(() => stream.writeAll(encodeFramesToArray([encodeMessage(append(1, 2, 1))], preamble(PriorityClass.Append))))
      const code = yield* Effect.promise(() => stream.stopped()).pipe(Effect.timeout("10 seconds"))
      expect(code).toBe(Number(ErrorCode.Internal))
      expect(counts.offers).toBe(1)
      yield* eventually("delivery_failed counted", deliveryFailed("iroh"), (n) => n === before + 1, 5_000)
    }).pipe(Effect.scoped), { timeout: 30_000 })
})
