import { Effect, FiberSet, Metric, type Scope } from "effect"
import { BlockDecoder } from "../message/blocks.ts"
import { decodeBlockRead, type DecodedRead, decodeRead } from "../message/codec.ts"
import { FrameDecoder, parsePreamble, PREAMBLE_LENGTH } from "../message/framing.ts"
import { className } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { InboundDelivery } from "../inbound/inbound-delivery.ts"
import type { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import type { PeerTable } from "../domain/peer-table.ts"
import { type Receipts, ReceiptPump } from "../inbound/inbound-receipts.ts"
import { ACK_PREAMBLE, encodeAcks } from "./ack-stream.ts"
import type { IrohConnection as Connection, IrohHost, IrohIncoming, IrohRecvStream as RecvStream } from "./host.ts"
import {
  ACK_STREAM_PRIORITY,
  ErrorCode,
  irohCall,
  IrohFailure,
  irohErrorMessage,
  protocolOfAlpn,
  protocolsOf,
  READ_CHUNK_BYTES,
  type WireVersion
} from "./protocol.ts"

export interface AcceptorOptions {
  readonly endpoint: IrohHost
  readonly self: NodeId
  readonly peers: PeerTable
  readonly mailbox: InboundMailbox
  readonly maxFrameBytes: number
  readonly maxSnapshotBytes: number
  /** The wire versions accepted; must match what the endpoint advertises (default: all). */
  readonly wireVersions?: ReadonlyArray<WireVersion> | undefined
  /** Told of every accepted connection's peer: a peer that dials is up (see `Connector.wake`). */
  readonly onPeerSeen?: ((peer: NodeId) => Effect.Effect<void>) | undefined
}

/** Inbound connections by peer, so removing a peer can close what it dialled. */
export class InboundConnections {
  private readonly byPeer = new Map<NodeId, Set<Connection>>()

  add(peer: NodeId, connection: Connection): void {
    let set = this.byPeer.get(peer)
    if (set === undefined) this.byPeer.set(peer, set = new Set())
    set.add(connection)
  }

  remove(peer: NodeId, connection: Connection): void {
    this.byPeer.get(peer)?.delete(connection)
  }

  closeAll(peer: NodeId): void {
    for (const c of this.byPeer.get(peer) ?? []) c.close(ErrorCode.PeerRemoved, "peer removed")
    this.byPeer.delete(peer)
  }
}

const refused = (reason: string) => Metric.update(Metric.withAttributes(M.inboundRefused, { transport: "iroh", reason }), 1)
const inboundError = (kind: string) => Metric.update(Metric.withAttributes(M.inboundErrors, { transport: "iroh", kind }), 1)

/**
 * The accept loop: authenticate each connection by its endpoint id against the peer table,
 * then read every uni stream it opens. Every per-connection and per-stream fiber lives in a
 * FiberSet of the acceptor's scope; a failure in one never reaches the others.
 */
export const runAcceptor = (options: AcceptorOptions): Effect.Effect<InboundConnections, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make()
    const connections = new InboundConnections()
    const { endpoint, peers } = options

    const protocols = protocolsOf(options.wireVersions)

    /** A stream's decoder: frames on version 1, blocks of frames on version 2. */
    const streamDecoder = (version: WireVersion): (chunk: Uint8Array) => DecodedRead => {
      if (version === 1) {
        const decoder = new FrameDecoder(options.maxFrameBytes)
        return (chunk) => decodeRead(decoder, chunk)
      }
      const decoder = new BlockDecoder(options.maxFrameBytes)
      return (chunk) => decodeBlockRead(decoder, chunk)
    }

    const readStream = (peer: NodeId, version: WireVersion, stream: RecvStream, receipts: Receipts | undefined) =>
      Effect.gen(function*() {
        const head = yield* irohCall(() => stream.readExact(PREAMBLE_LENGTH), IrohFailure.of).pipe(
          // A stream that ends inside its preamble is bad input (a short preamble), not a quiet end.
          Effect.catch((e) => e.message.startsWith("FinishedEarly") ? Effect.succeed(new Uint8Array(0)) : Effect.fail(e))
        )
        const cls = parsePreamble(head, version)
        if (typeof cls !== "number") {
          yield* inboundError("bad_preamble")
          yield* Effect.logWarning(`closing inbound stream from peer ${peer}: ${cls.message}`)
          yield* irohCall(() => stream.stop(ErrorCode.BadPreamble), IrohFailure.of)
          return
        }
        const delivery = new InboundDelivery({
          self: options.self,
          peer,
          cls,
          transport: "iroh",
          mailbox: options.mailbox,
          maxSnapshotBytes: options.maxSnapshotBytes,
          receipts
        })
        const decode = streamDecoder(version)
        while (true) {
          const chunk = yield* irohCall(() => stream.read(READ_CHUNK_BYTES[cls]!), IrohFailure.of)
          if (chunk.length === 0) return // the sender finished the stream
          yield* delivery.countBytes(chunk.length)
          const { messages, failure } = decode(chunk)
          yield* delivery.deliver(messages)
          if (failure !== undefined) {
            const tooLarge = failure._tag === "FrameTooLarge"
            yield* inboundError(tooLarge ? "frame_too_large" : "decode_failed")
            yield* Effect.logWarning(`closing ${className(cls)} stream from peer ${peer}: ${failure.message}`)
            yield* irohCall(() => stream.stop(tooLarge ? ErrorCode.FrameTooLarge : ErrorCode.DecodeFailed), IrohFailure.of)
            return
          }
        }
      }).pipe(
        // A reset or lost connection ends the stream; the connection handler reports the loss.
        Effect.catch((error) => Effect.logDebug(`inbound stream from peer ${peer} ended: ${irohErrorMessage(error)}`)),
        // A bug in delivery must not leave the stream open and unread (its sender would stall on
        // flow control with nothing said): report it and stop the stream, which the sender sees.
        Effect.catchDefect((defect) =>
          Effect.andThen(
            Effect.andThen(inboundError("delivery_failed"), Effect.logError(`closing inbound stream from peer ${peer}: delivery failed`, defect)),
            irohCall(() => stream.stop(ErrorCode.Internal), IrohFailure.of).pipe(Effect.ignore)
          )
        )
      )

    // Pings: the dialler opens a bi stream and we echo it (see `answerPings`).
    const answerPings = (peer: NodeId, connection: Connection) =>
      irohCall(() => connection.answerPings(), IrohFailure.of).pipe(
        Effect.flatMap((answers) =>
          answers.failed === 0 ? Effect.void : Effect.logDebug(
            `${answers.failed} of ${answers.failed + answers.answered} pings from peer ${peer} not answered (last: ${answers.lastFailure})`
          )
        ),
        Effect.catch(() => Effect.void) // ends with the connection, which serveConnection reports
      )

    /**
     * The acknowledgement stream of a connection that asked for it (`ALPN_ACKED`): what the
     * application takes from the mailbox, and what is dropped here, is reported back to the
     * dialler, whose ledger counts the rest as lost if the connection fails.
     */
    const ackStream = (peer: NodeId, connection: Connection) =>
      Effect.gen(function*() {
        const stream = yield* irohCall(async () => {
          const s = await connection.openUni(ACK_STREAM_PRIORITY)
          await s.writeFrames([], ACK_PREAMBLE)
          return s
        }, IrohFailure.of)
        return yield* ReceiptPump.make(
          (counts) => irohCall(() => stream.writeFrames([], encodeAcks(counts)), IrohFailure.of),
          (error) => Effect.logDebug(`acknowledgements to peer ${peer} ended: ${error.message}`)
        )
      })

    const serveConnection = (peer: NodeId, connection: Connection, version: WireVersion, acked: boolean) =>
      Effect.gen(function*() {
        connections.add(peer, connection)
        yield* Effect.logDebug(`accepted connection from peer ${peer} (wire version ${version}${acked ? ", acknowledged" : ""})`)
        yield* FiberSet.run(fibers, answerPings(peer, connection), { startImmediately: true })
        const receipts = acked ? yield* ackStream(peer, connection) : undefined
        while (true) {
          const stream = yield* irohCall(() => connection.acceptUni(), IrohFailure.of)
          yield* FiberSet.run(fibers, readStream(peer, version, stream, receipts), { startImmediately: true })
        }
      }).pipe(
        Effect.scoped,
        Effect.catch((error) => Effect.logDebug(`inbound connection from peer ${peer} closed: ${irohErrorMessage(error)}`)),
        Effect.ensuring(Effect.sync(() => connections.remove(peer, connection)))
      )

    const handshake = (incoming: IrohIncoming) =>
      Effect.gen(function*() {
        const { connection, alpn } = yield* irohCall(() => incoming.accept(), IrohFailure.of)
        const protocol = protocolOfAlpn(alpn, protocols)
        if (protocol === undefined) {
          connection.close(ErrorCode.UnknownEndpoint, "unknown alpn")
          yield* refused("bad_alpn")
          return yield* Effect.logWarning(`refused inbound connection with ALPN ${JSON.stringify(alpn)}`)
        }
        const remote = connection.remoteId
        const peer = peers.peerForEndpoint(remote)
        if (peer === undefined || peer === options.self) {
          connection.close(ErrorCode.UnknownEndpoint, "unknown endpoint")
          yield* refused("unknown_endpoint")
          return yield* Effect.logWarning(`refused inbound connection from endpoint ${remote}: not in the peer table`)
        }
        if (options.onPeerSeen !== undefined) yield* options.onPeerSeen(peer)
        yield* serveConnection(peer, connection, protocol.version, protocol.acked)
      }).pipe(
        Effect.catch((error) =>
          Effect.andThen(refused("handshake"), Effect.logWarning(`inbound handshake failed: ${irohErrorMessage(error)}`))
        )
      )

    yield* FiberSet.run(
      fibers,
      Effect.gen(function*() {
        while (true) {
          const incoming = yield* irohCall(() => endpoint.acceptNext(), IrohFailure.of)
          if (incoming === null) return yield* Effect.logDebug("iroh endpoint closed; accept loop ends")
          yield* FiberSet.run(fibers, handshake(incoming), { startImmediately: true })
        }
      }).pipe(Effect.catch((error) => Effect.logError(`iroh accept loop failed: ${irohErrorMessage(error)}`))),
      { startImmediately: true }
    )
    return connections
  })
