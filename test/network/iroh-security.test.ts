import { describe, expect, it } from "@effect/vitest"
import iroh from "@number0/iroh"
import { Effect } from "effect"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { ALPN, alpnBytes, protocolOfAlpn } from "../../src/iroh/protocol.ts"
import { plainBlockHeader } from "../../src/message/blocks.ts"
import { encodeFrames, preamble } from "../../src/message/framing.ts"
import { MessageType } from "../../src/message/types.ts"
import { inboundErrors, inboundRefused, messagesDropped } from "../../src/metrics/metrics.ts"
import { addressOf, append, irohNodeConfig, receiveN, startCluster, startNode, tempDir } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { counter } from "../support/metrics.ts"
import { rawIrohEndpoint } from "../support/raw-iroh.ts"

const { EndpointAddr, EndpointId } = iroh

/**
 * A connection to `node` from a raw endpoint it knows as peer 9, so what the raw side writes gets
 * past authentication to the stream reader.
 */
const knownRawConnection = (node: RaftTransportService, alpn: Array<number>) =>
  Effect.gen(function*() {
    const raw = yield* rawIrohEndpoint
    yield* node.addPeer({ id: 9, irohEndpointId: raw.id().toString(), irohAddresses: [] })
    const address = node.localAddress().iroh!
    return yield* Effect.promise(() =>
      raw.connect(new EndpointAddr(EndpointId.fromString(address.endpointId), null, [...address.addresses]), alpn)
    )
  })

describe("iroh inbound security", () => {
  it.live("a peer known only by its ticket is authenticated by the ticket's endpoint id", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const a = yield* startNode(yield* irohNodeConfig(1, dir))
      const b = yield* startNode(yield* irohNodeConfig(2, dir))
      yield* a.addPeer({ id: 2, irohTicket: b.localAddress().iroh!.ticket, irohAddresses: [] })
      yield* b.addPeer(addressOf(a))
      yield* b.send(1, append(2, 1, 1))
      yield* a.send(2, append(1, 2, 2))
      const [atA] = yield* receiveN(a, 1).pipe(Effect.timeout("20 seconds"))
      const [atB] = yield* receiveN(b, 1).pipe(Effect.timeout("20 seconds"))
      expect([atA!.from, atA!.index, atB!.from, atB!.index]).toEqual([2, 1, 1, 2])
    }).pipe(Effect.scoped))

  it.live("refuses an endpoint outside the peer table", () =>
    Effect.gen(function*() {
      const [a] = yield* startCluster(1)
      const stranger = yield* rawIrohEndpoint
      const before = yield* counter(inboundRefused, { transport: "iroh", reason: "unknown_endpoint" })
      const address = a!.localAddress().iroh!
      const conn = yield* Effect.promise(() =>
        stranger.connect(new EndpointAddr(EndpointId.fromString(address.endpointId), null, [...address.addresses]), ALPN)
      )
      const reason = yield* Effect.promise(() => conn.closed())
      expect(reason).toContain("unknown endpoint")
      yield* eventually("refusal counted", counter(inboundRefused, { transport: "iroh", reason: "unknown_endpoint" }), (n) => n === before + 1, 10_000)
    }).pipe(Effect.scoped))

  it.live("drops and counts a message whose 'from' disagrees with the connection's identity", () =>
    Effect.gen(function*() {
      const [a, b] = yield* startCluster(3)
      const labels = { peer: "2", class: "append", transport: "iroh", reason: "forged_from" }
      const before = yield* counter(messagesDropped, labels)
      yield* b!.send(1, { ...append(3, 1, 7) }) // node 2 pretends to be node 3
      yield* b!.send(1, append(2, 1, 8))
      const [got] = yield* receiveN(a!, 1).pipe(Effect.timeout("20 seconds"))
      expect(got!.from).toBe(2)
      expect(got!.index).toBe(8)
      expect(yield* counter(messagesDropped, labels)).toBe(before + 1)
    }).pipe(Effect.scoped))

  it.live("bad bytes on a raw stream close that stream, are counted, and hurt nobody else", () =>
    Effect.gen(function*() {
      const [a, b] = yield* startCluster(2)
      const conn = yield* knownRawConnection(a!, ALPN)
      const errors = (kind: string) => counter(inboundErrors, { transport: "iroh", kind })
      const before = {
        bad_preamble: yield* errors("bad_preamble"),
        frame_too_large: yield* errors("frame_too_large"),
        decode_failed: yield* errors("decode_failed")
      }
      const random = Array.from({ length: 4096 }, () => Math.floor(Math.random() * 256))
      random[0] = 0x00 // never "R"
      const hugeFrame = [...preamble(2), 0xff, 0xff, 0xff, 0xff, 1, 2, 3]
      const garbage = [...preamble(2), ...encodeFrames([Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])])]
      for (const bytes of [random, hugeFrame, garbage]) {
        const stream = yield* Effect.promise(() => conn.openUni())
        yield* Effect.promise(() => stream.writeAll(bytes))
      }
      // A stream that ends inside its preamble is a bad preamble too, not a quiet end.
      const short = yield* Effect.promise(() => conn.openUni())
      yield* Effect.promise(async () => {
        await short.writeAll([0x52, 0x54])
        await short.finish()
      })
      yield* eventually("bad_preamble counted", errors("bad_preamble"), (n) => n === before.bad_preamble + 2, 10_000)
      yield* eventually("frame_too_large counted", errors("frame_too_large"), (n) => n === before.frame_too_large + 1, 10_000)
      yield* eventually("decode_failed counted", errors("decode_failed"), (n) => n === before.decode_failed + 1, 10_000)
      // The node still works for everyone else.
      yield* b!.send(1, append(2, 1, 1))
      const [got] = yield* receiveN(a!, 1).pipe(Effect.timeout("20 seconds"))
      expect(got!.msgType).toBe(MessageType.Append)
    }).pipe(Effect.scoped))

  it.live("on wire version 3, a malformed acknowledgement extension or session id closes that stream, counted, and hurts nobody else", () =>
    Effect.gen(function*() {
      const [a, b] = yield* startCluster(2)
      const conn = yield* knownRawConnection(a!, alpnBytes(protocolOfAlpn("raft-transport/3")!))
      const errors = (kind: string) => counter(inboundErrors, { transport: "iroh", kind })
      const before = { bad_preamble: yield* errors("bad_preamble"), decode_failed: yield* errors("decode_failed") }
      const session = (id: number) => [0, 0, 0, 0, 0, 0, 0, id]
      const send = (bytes: Array<number>, finish: boolean) =>
        Effect.promise(async () => {
          const stream = await conn.openUni()
          await stream.writeAll(bytes)
          if (finish) await stream.finish()
        })
      // An acknowledgement record of 3 bytes instead of 17, in the header of an empty block.
      yield* send([...preamble(2, 3), ...session(1), ...plainBlockHeader(0, Uint8Array.of(1, 3, 0, 0, 0))], false)
      yield* eventually("decode_failed counted", errors("decode_failed"), (n) => n === before.decode_failed + 1, 10_000)
      // A session id cut short, then a stream naming another session than the connection's first.
      yield* send([...preamble(1, 3), 0, 0, 0], true)
      yield* send([...preamble(0, 3), ...session(2)], false)
      yield* eventually("bad_preamble counted", errors("bad_preamble"), (n) => n === before.bad_preamble + 2, 10_000)
      yield* b!.send(1, append(2, 1, 1))
      const [got] = yield* receiveN(a!, 1).pipe(Effect.timeout("20 seconds"))
      expect(got!.msgType).toBe(MessageType.Append)
    }).pipe(Effect.scoped))
})
