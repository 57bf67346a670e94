import { Effect, FiberSet, Metric, Option, type Scope } from "effect"
import type { PeerTable } from "../domain/peer-table.ts"
import { InboundDelivery } from "../inbound/inbound-delivery.ts"
import { defaultInboundLimits, type InboundShared, makeInboundShared } from "../inbound/inbound-limits.ts"
import type { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import { BlockDecoder, type FrameSpans } from "../message/blocks.ts"
import { decodeSpans } from "../message/codec.ts"
import { BadPreamble, type DecodeFailed, type FrameTooLarge } from "../message/errors.ts"
import { FrameDecoder, parsePreamble, PREAMBLE_LENGTH } from "../message/framing.ts"
import { className } from "../message/priority.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { makeRefusalLog } from "../metrics/refusal-log.ts"
import { type Receipts, ReceiptPump, type ReceiptRide } from "../inbound/inbound-receipts.ts"
import type { AckRides } from "./ack-rides.ts"
import { ACK_PREAMBLE, decodeRiddenAcks, encodeAcks } from "./ack-stream.ts"
import type { IrohConnection as Connection, IrohHost, IrohIncoming, IrohRecvStream as RecvStream } from "./host.ts"
import {
  ACK_STREAM_PRIORITY,
  ErrorCode,
  irohCall,
  IrohFailure,
  irohErrorMessage,
  isAlpnRefusal,
  protocolOfAlpn,
  protocolsOf,
  READ_CHUNK_BYTES,
  ridesAcks,
  SESSION_ID_BYTES,
  type WireVersion
} from "./protocol.ts"

export interface AcceptorOptions {
  readonly endpoint: IrohHost
  readonly self: NodeId
  readonly peers: PeerTable
  readonly mailbox: InboundMailbox
  readonly maxFrameBytes: number
  readonly maxSnapshotBytes: number
  /** Limits and snapshot budget shared with the gRPC server; absent: defaults of its own. */
  readonly inbound?: InboundShared | undefined
  /** The wire versions accepted; must match what the endpoint advertises (default: all). */
  readonly wireVersions?: ReadonlyArray<WireVersion> | undefined
  /** Told of every accepted connection's peer: a peer that dials is up (see `Connector.wake`). */
  readonly onPeerSeen?: ((peer: NodeId) => Effect.Effect<void>) | undefined
  /**
   * Where acknowledgements ride on blocks (version 3): this node's acknowledgements of a
   * connection wait there for a block to the peer, and those the peer's blocks carry go to the
   * links' ledgers. Absent: version 3 connections acknowledge on their stream only.
   */
  readonly rides?: AckRides | undefined
}

/** One read's whole frames, as spans over one or more buffers, and what ends the stream. */
interface StreamRead {
  readonly segments: ReadonlyArray<FrameSpans>
  /** The header extensions of its blocks (version 2 and later). */
  readonly extensions: ReadonlyArray<Uint8Array>
  readonly failure: DecodeFailed | FrameTooLarge | undefined
}

/** A stream's framing: frames on version 1, blocks of frames on version 2. */
interface StreamFraming {
  readonly push: (chunk: Uint8Array) => StreamRead
  /** Bytes held for an incomplete frame or block. */
  readonly pending: () => number
}

const streamFraming = (version: WireVersion, maxFrameBytes: number): StreamFraming => {
  if (version === 1) {
    const decoder = new FrameDecoder(maxFrameBytes)
    return {
      push: (chunk) => {
        const spans = decoder.pushSpans(chunk)
        return { segments: [{ bytes: decoder.bytes, spans }], extensions: [], failure: decoder.tooLarge }
      },
      pending: () => decoder.pending
    }
  }
  const decoder = new BlockDecoder(maxFrameBytes)
  return { push: (chunk) => decoder.push(chunk), pending: () => decoder.pending }
}

/**
 * Inbound connections by peer, oldest first, so removing a peer can close what it dialled and
 * a peer over `max_connections_per_peer` loses its oldest.
 */
export class InboundConnections {
  private readonly byPeer = new Map<NodeId, Set<Connection>>()

  add(peer: NodeId, connection: Connection): void {
    let set = this.byPeer.get(peer)
    if (set === undefined) this.byPeer.set(peer, set = new Set())
    set.add(connection)
  }

  remove(peer: NodeId, connection: Connection): void {
    const set = this.byPeer.get(peer)
    set?.delete(connection)
    if (set?.size === 0) this.byPeer.delete(peer)
  }

  count(peer: NodeId): number {
    return this.byPeer.get(peer)?.size ?? 0
  }

  /** Closes and forgets the peer's oldest connection. */
  closeOldest(peer: NodeId): void {
    const set = this.byPeer.get(peer)
    const oldest = set?.values().next().value
    if (oldest === undefined) return
    set!.delete(oldest)
    oldest.close(ErrorCode.Replaced, "replaced by a newer connection")
  }

  closeAll(peer: NodeId): void {
    for (const c of this.byPeer.get(peer) ?? []) c.close(ErrorCode.PeerRemoved, "peer removed")
    this.byPeer.delete(peer)
  }
}

const deliveryFailed = Metric.withAttributes(M.inboundErrors, { transport: "iroh", kind: "delivery_failed" })
const acksWritten = M.series(M.acknowledgements, { transport: "iroh", how: "written" })

/** What the dialler named an accepted connection (version 3): set by its first class stream. */
interface Named {
  session: bigint | undefined
}

/**
 * Pings answered at once per connection (more are stopped). A ping is a bi stream per probe
 * interval, alive until answered or timed out; under load an answer can outlast an interval,
 * and a second ping refused or held back for stream credit would count as missed, so a live
 * link would be declared dead. Four cover a probe timeout of four intervals.
 */
const PINGS_AT_ONCE = 4

/**
 * The accept loop: authenticate each connection by its endpoint id against the peer table,
 * then read every uni stream it opens, within `[transport.limits]`: connections in total and
 * per peer, streams per connection, handshake and idle timeouts, decode caps. Every
 * per-connection and per-stream fiber lives in a FiberSet of the acceptor's scope; a failure
 * in one never reaches the others.
 */
export const runAcceptor = (options: AcceptorOptions): Effect.Effect<InboundConnections, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make()
    const connections = new InboundConnections()
    const { endpoint, peers } = options
    const inbound = options.inbound ?? (yield* makeInboundShared(defaultInboundLimits))
    const { limits } = inbound
    const intervalMs = limits.refusalLogIntervalMs
    const refusedLog = makeRefusalLog<string>({ counter: M.inboundRefused, attributes: { transport: "iroh" }, intervalMs })
    const errorLog = makeRefusalLog<string>({ counter: M.inboundErrors, attributes: { transport: "iroh" }, reasonKey: "kind", intervalMs })
    const maxUniStreams = limits.maxStreamsPerConnection - 1 // one is the probe's bi stream
    const protocols = protocolsOf(options.wireVersions)
    /** Connections open or in their handshake. */
    let open = 0

    const refused = (reason: string, detail: string) => refusedLog.refuse(reason, detail)
    const inboundError = (kind: string, detail: string) => errorLog.refuse(kind, detail)
    const stop = (stream: RecvStream, code: bigint) => irohCall(() => stream.stop(code), IrohFailure.of).pipe(Effect.ignore)

    const readStream = (peer: NodeId, version: WireVersion, stream: RecvStream, receipts: Receipts | undefined, named: Named) =>
      Effect.gen(function*() {
        const rides = ridesAcks(version) ? options.rides : undefined
        const headLength = PREAMBLE_LENGTH + (ridesAcks(version) ? SESSION_ID_BYTES : 0)
        const head = yield* irohCall(() => stream.readExact(headLength), IrohFailure.of).pipe(
          // A stream that ends inside its preamble is bad input (a short preamble), not a quiet end.
          Effect.catch((e) => e.message.startsWith("FinishedEarly") ? Effect.succeed(new Uint8Array(0)) : Effect.fail(e)),
          Effect.timeoutOption(limits.handshakeTimeoutMs)
        )
        if (Option.isNone(head)) {
          yield* inboundError("handshake_timeout", `closing inbound stream from peer ${peer}: no preamble within ${limits.handshakeTimeoutMs} ms`)
          return yield* stop(stream, ErrorCode.Limit)
        }
        const bytes = head.value
        const cls = bytes.length === headLength
          ? parsePreamble(bytes.subarray(0, PREAMBLE_LENGTH), version)
          : new BadPreamble({ bytes: Array.from(bytes), reason: "short" })
        if (typeof cls !== "number") {
          yield* inboundError("bad_preamble", `closing inbound stream from peer ${peer}: ${cls.message}`)
          return yield* stop(stream, ErrorCode.BadPreamble)
        }
        if (ridesAcks(version)) {
          const session = new DataView(bytes.buffer, bytes.byteOffset + PREAMBLE_LENGTH, SESSION_ID_BYTES).getBigUint64(0)
          if (named.session !== undefined && named.session !== session) {
            yield* inboundError("bad_preamble", `closing inbound stream from peer ${peer}: session ${session} on a connection named ${named.session}`)
            return yield* stop(stream, ErrorCode.BadPreamble)
          }
          named.session = session
        }
        const delivery = new InboundDelivery({
          self: options.self,
          peer,
          cls,
          transport: "iroh",
          mailbox: options.mailbox,
          maxSnapshotBytes: options.maxSnapshotBytes,
          snapshotBudget: inbound.snapshotBudget,
          refusalLogIntervalMs: intervalMs,
          receipts
        })
        const decoder = streamFraming(version, options.maxFrameBytes)
        const closing = (kind: string, code: bigint, detail: string) =>
          Effect.andThen(inboundError(kind, `closing ${className(cls)} stream from peer ${peer}: ${detail}`), stop(stream, code))
        yield* Effect.gen(function*() {
          while (true) {
            const read = irohCall(() => stream.read(READ_CHUNK_BYTES[cls]!), IrohFailure.of)
            // A quiet class stream is normal (no election for hours); one stuck inside a frame is not.
            const next = decoder.pending() === 0 ? Effect.map(read, Option.some) : Effect.timeoutOption(read, limits.idleTimeoutMs)
            const chunk = yield* next
            if (Option.isNone(chunk)) {
              return yield* closing("idle_timeout", ErrorCode.Limit, `no data for ${limits.idleTimeoutMs} ms inside a frame`)
            }
            if (chunk.value.length === 0) {
              // The sender finished the stream.
              if (decoder.pending() > 0) yield* inboundError("truncated_frame", `${className(cls)} stream from peer ${peer} ended inside a frame`)
              return
            }
            yield* delivery.countBytes(chunk.value.length)
            const framed = decoder.push(chunk.value)
            if (rides !== undefined) {
              for (const extension of framed.extensions) {
                const acks = decodeRiddenAcks(extension)
                if (typeof acks === "string") return yield* closing("decode_failed", ErrorCode.DecodeFailed, `block extension: ${acks}`)
                rides.acknowledge(peer, acks)
              }
            }
            // Decoded and delivered a slice at a time, yielding between: one read of small frames
            // must not hold the event loop (decodeSpans bounds a slice).
            for (const { bytes, spans } of framed.segments) {
              let from = 0
              while (from < spans.length) {
                const messages: Array<RaftMessage> = []
                const slice = decodeSpans(bytes, spans, from, limits.decode.maxMessageEntries, messages)
                yield* delivery.deliver(messages)
                if (slice.failure !== undefined) {
                  const kind = slice.failure._tag === "DecodeLimitExceeded" ? "too_many_entries" : "decode_failed"
                  return yield* closing(kind, slice.failure._tag === "DecodeLimitExceeded" ? ErrorCode.Limit : ErrorCode.DecodeFailed, slice.failure.message)
                }
                from = slice.next
                if (from < spans.length) yield* Effect.yieldNow
              }
            }
            if (framed.failure !== undefined) {
              return framed.failure._tag === "FrameTooLarge"
                ? yield* closing("frame_too_large", ErrorCode.FrameTooLarge, framed.failure.message)
                : yield* closing("decode_failed", ErrorCode.DecodeFailed, framed.failure.message)
            }
          }
        }).pipe(
          Effect.tapError(() =>
            decoder.pending() > 0
              ? inboundError("truncated_frame", `${className(cls)} stream from peer ${peer} was reset inside a frame`)
              : Effect.void
          ),
          Effect.ensuring(delivery.end)
        )
      }).pipe(
        // A reset or lost connection ends the stream; the connection handler reports the loss.
        Effect.catch((error) => Effect.logDebug(`inbound stream from peer ${peer} ended: ${irohErrorMessage(error)}`)),
        // A bug in delivery must not leave the stream open and unread (its sender would stall on
        // flow control with nothing said): report it and stop the stream, which the sender sees.
        Effect.catchDefect((defect) =>
          Effect.andThen(
            Effect.andThen(
              Metric.update(deliveryFailed, 1),
              Effect.logError(`closing inbound stream from peer ${peer}: delivery failed`, defect)
            ),
            stop(stream, ErrorCode.Internal)
          )
        )
      )

    // Pings: the dialler opens a bi stream and we echo it (see `answerPings`).
    const answerPings = (peer: NodeId, connection: Connection) =>
      irohCall(() => connection.answerPings({ maxConcurrent: PINGS_AT_ONCE, timeoutMs: limits.handshakeTimeoutMs }), IrohFailure.of).pipe(
        Effect.flatMap((answers) =>
          Effect.andThen(
            answers.refused === 0
              ? Effect.void
              : refusedLog.refuse("too_many_streams", `stopped ${answers.refused} ping(s) of peer ${peer} beyond ${PINGS_AT_ONCE} at a time`, answers.refused),
            answers.failed === 0 ? Effect.void : Effect.logDebug(
              `${answers.failed} of ${answers.failed + answers.answered} pings from peer ${peer} not answered (last: ${answers.lastFailure})`
            )
          )
        ),
        Effect.catch(() => Effect.void) // ends with the connection, which serveConnection reports
      )

    /**
     * The acknowledgement stream of a connection whose protocol has one (version 2): what the
     * application takes from the mailbox, and what is dropped here, is reported back to the
     * dialler, whose ledger counts the rest as lost if the connection fails.
     */
    const ackStream = (peer: NodeId, connection: Connection, ride: ReceiptRide | undefined) =>
      Effect.gen(function*() {
        const stream = yield* irohCall(async () => {
          const s = await connection.openUni(ACK_STREAM_PRIORITY)
          await s.writeFrames([], ACK_PREAMBLE)
          return s
        }, IrohFailure.of)
        return yield* ReceiptPump.make(
          (counts) =>
            // Counted as handed to the write, before the peer can have it.
            Effect.andThen(Metric.update(acksWritten, 1), irohCall(() => stream.writeFrames([], encodeAcks(counts)), IrohFailure.of)),
          (error) => Effect.logDebug(`acknowledgements to peer ${peer} ended: ${error.message}`),
          ride
        )
      })

    const serveConnection = (peer: NodeId, connection: Connection, version: WireVersion, acked: boolean) =>
      Effect.gen(function*() {
        if (connections.count(peer) >= limits.maxConnectionsPerPeer) {
          connections.closeOldest(peer)
          yield* refused("connection_replaced", `peer ${peer} opened more than ${limits.maxConnectionsPerPeer} connection(s): its oldest is closed`)
        }
        connections.add(peer, connection)
        connection.limitStreams(maxUniStreams, PINGS_AT_ONCE)
        yield* Effect.logDebug(`accepted connection from peer ${peer} (wire version ${version}${acked ? ", acknowledged" : ""})`)
        yield* FiberSet.run(fibers, answerPings(peer, connection), { startImmediately: true })
        /** The dialler's name for this connection (version 3), from the first class stream's preamble. */
        const named: Named = { session: undefined }
        const ride = ridesAcks(version) ? options.rides?.ride(peer, () => named.session) : undefined
        const receipts = acked ? yield* ackStream(peer, connection, ride) : undefined
        let streams = 0
        while (true) {
          const stream = yield* irohCall(() => connection.acceptUni(), IrohFailure.of)
          if (streams >= maxUniStreams) {
            yield* refused("too_many_streams", `stopping a stream from peer ${peer}: ${maxUniStreams} are open on its connection`)
            yield* stop(stream, ErrorCode.Limit)
            continue
          }
          streams++
          yield* FiberSet.run(fibers, readStream(peer, version, stream, receipts, named).pipe(Effect.ensuring(Effect.sync(() => streams--))), {
            startImmediately: true
          })
        }
      }).pipe(
        Effect.scoped,
        Effect.catch((error) => Effect.logDebug(`inbound connection from peer ${peer} closed: ${irohErrorMessage(error)}`)),
        Effect.ensuring(Effect.sync(() => connections.remove(peer, connection)))
      )

    const handshake = (incoming: IrohIncoming) =>
      Effect.gen(function*() {
        // Not interruptible in the binding: a handshake that completes after its timeout is closed then.
        const accepting = incoming.accept()
        const accepted = yield* irohCall(() => accepting, IrohFailure.of).pipe(Effect.timeoutOption(limits.handshakeTimeoutMs))
        if (Option.isNone(accepted)) {
          accepting.then(({ connection }) => connection.close(ErrorCode.Limit, "handshake timeout"), () => undefined)
          return yield* refused("handshake_timeout", `inbound handshake not done within ${limits.handshakeTimeoutMs} ms`)
        }
        const { connection, alpn } = accepted.value
        const protocol = protocolOfAlpn(alpn, protocols)
        if (protocol === undefined) {
          connection.close(ErrorCode.UnknownEndpoint, "unknown alpn")
          return yield* refused("bad_alpn", `refused inbound connection with ALPN ${JSON.stringify(alpn)}`)
        }
        const remote = connection.remoteId
        const peer = peers.peerForEndpoint(remote)
        if (peer === undefined || peer === options.self) {
          connection.close(ErrorCode.UnknownEndpoint, "unknown endpoint")
          return yield* refused("unknown_endpoint", `refused inbound connection from endpoint ${remote}: not in the peer table`)
        }
        if (options.onPeerSeen !== undefined) yield* options.onPeerSeen(peer)
        yield* serveConnection(peer, connection, protocol.version, protocol.acked)
      }).pipe(
        Effect.catch((error) => {
          const message = irohErrorMessage(error)
          // A dialler offering none of our ALPNs fails the TLS handshake itself (alert 120).
          return isAlpnRefusal(message)
            ? refused("bad_alpn", `refused inbound connection: ${message}`)
            : refused("handshake", `inbound handshake failed: ${message}`)
        }),
        Effect.ensuring(Effect.sync(() => open--))
      )

    yield* FiberSet.run(
      fibers,
      Effect.gen(function*() {
        while (true) {
          const incoming = yield* irohCall(() => endpoint.acceptNext(), IrohFailure.of)
          if (incoming === null) return yield* Effect.logDebug("iroh endpoint closed; accept loop ends")
          if (open >= limits.maxConnections) {
            yield* irohCall(() => incoming.refuse(), IrohFailure.of).pipe(Effect.ignore)
            yield* refused("too_many_connections", `refused an inbound connection: ${limits.maxConnections} are open`)
            continue
          }
          open++
          yield* FiberSet.run(fibers, handshake(incoming), { startImmediately: true })
        }
      }).pipe(Effect.catch((error) => Effect.logError(`iroh accept loop failed: ${irohErrorMessage(error)}`))),
      { startImmediately: true }
    )
    return connections
  })
