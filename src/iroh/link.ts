import { Clock, Deferred, Effect, Metric } from "effect"
import { maxBlockRawBytes } from "../message/blocks.ts"
import { FRAME_HEADER_LENGTH, preamble } from "../message/framing.ts"
import * as M from "../metrics/metrics.ts"
import { className, PriorityClass, priorityClasses } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import type { Link, LinkSession } from "../peer/link.ts"
import { AckLedger, type DeliveryLedger, ProbeLedger } from "../peer/delivery-ledger.ts"
import { forkProbe, type PingSkipping } from "../peer/probe.ts"
import { ConnectFailed, StreamFailed } from "../domain/errors.ts"
import type { AckRides } from "./ack-rides.ts"
import { ACK_PREAMBLE, AckDecoder } from "./ack-stream.ts"
import { type DarkSampler, forkDarkSampler } from "./dark-sampler.ts"
import { BlockEncoder, type CompressionOptions, noCompression } from "./block-encoder.ts"
import type { DialAddress, IrohConnection, IrohHost, IrohSendStream } from "./host.ts"
import {
  ALPN_REFUSAL_MEMORY_MS,
  alpnBytes,
  ErrorCode,
  irohCall,
  IrohFailure,
  irohErrorMessage,
  isAlpnRefusal,
  protocolsOf,
  READ_CHUNK_BYTES,
  ridesAcks,
  SESSION_ID_BYTES,
  STREAM_PRIORITY,
  type WireProtocol,
  type WireVersion
} from "./protocol.ts"

export interface IrohLinkOptions extends PingSkipping {
  readonly endpoint: IrohHost
  readonly peer: NodeId
  /** Read at every dial: the peer table may change. */
  readonly address: () => DialAddress | undefined
  readonly connectTimeoutMs: number
  readonly probeIntervalMs: number
  /** Deadline of one ping. */
  readonly probeTimeoutMs: number
  /** Consecutive failed pings after which the session is reported closed. */
  readonly probeFailuresBeforeClose: number
  /** Wire versions to dial (default: all this build speaks), newest first. */
  readonly wireVersions?: ReadonlyArray<WireVersion> | undefined
  /** What to compress on a version 2 connection (default: nothing). */
  readonly compression?: CompressionOptions | undefined
  /** `max_frame_bytes`: a block never carries more than one frame of this size (`message/blocks.ts`). */
  readonly maxFrameBytes?: number | undefined
  /** Silence after an unanswered send that closes the session as dark (0: pings only; see `DarkWatch`). */
  readonly darkAfterMs: number
  /**
   * Where acknowledgements ride on blocks (version 3): the link's blocks carry those waiting for
   * this peer, and its ledger takes those the peer sends on its own connection. Absent: a
   * version 3 session acknowledges on its stream only.
   */
  readonly rides?: AckRides | undefined
}

/**
 * Feeds the peer's acknowledgements to `ack` until the connection ends. A malformed stream
 * stops the feed (the writes it would have confirmed are then counted as lost).
 */
const readAcks = (peer: NodeId, connection: IrohConnection, ack: (cls: PriorityClass, cumulative: number) => void) =>
  Effect.gen(function*() {
    const stream = yield* irohCall(() => connection.acceptUni(), IrohFailure.of)
    const head = yield* irohCall(() => stream.readExact(ACK_PREAMBLE.length), IrohFailure.of)
    if (!head.every((b, i) => b === ACK_PREAMBLE[i])) {
      return yield* Effect.logWarning(`peer ${peer} opened a stream that is not an acknowledgement stream; its acknowledgements are ignored`)
    }
    const decoder = new AckDecoder()
    while (true) {
      const chunk = yield* irohCall(() => stream.read(READ_CHUNK_BYTES[0]!), IrohFailure.of)
      if (chunk.length === 0) return
      const records = decoder.push(chunk)
      if (typeof records === "string") {
        return yield* Effect.logWarning(`acknowledgements from peer ${peer} ignored from here on: ${records}`)
      }
      for (const { cls, cumulative } of records) ack(cls, cumulative)
    }
  }).pipe(
    // Ends with the connection, which the session reports.
    Effect.catch((error) => Effect.logDebug(`acknowledgements from peer ${peer} ended: ${error.message}`))
  )

/**
 * The outbound Iroh link to one peer: a QUIC connection with one uni stream per class,
 * opened with the connection, given the class's priority and the preamble, and kept for the
 * connection's life. A ping on a short bi stream measures RTT and
 * notices a dark path long before QUIC's idle timeout would.
 */
export const makeIrohLink = (options: IrohLinkOptions): Link => {
  const { endpoint, peer, connectTimeoutMs } = options
  const protocols = protocolsOf(options.wireVersions)
  const compression = options.compression ?? noCompression
  const maxBlockRaw = maxBlockRawBytes(options.maxFrameBytes ?? Number.MAX_SAFE_INTEGER)
  /** When the peer last refused each protocol (an older node): see `ALPN_REFUSAL_MEMORY_MS`. */
  const refusedAt = new Map<string, number>()
  const versionRefused = Metric.withAttributes(M.connectionFailures, { peer: String(peer), transport: "iroh", kind: "version_refused" })

  /**
   * Dials the newest protocol the peer has not refused lately, and the next one when it
   * refuses (docs/design.md, "Wire format (versions 2 and 3)"). Any other failure ends the attempt:
   * it says nothing about versions.
   */
  const dial = (addr: DialAddress) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const candidates = protocols.filter((p, i) =>
        i === protocols.length - 1 || now - (refusedAt.get(p.alpn) ?? Number.NEGATIVE_INFINITY) >= ALPN_REFUSAL_MEMORY_MS
      )
      for (let i = 0;; i++) {
        const protocol: WireProtocol = candidates[i]!
        const attempt = yield* Effect.result(irohCall(() => endpoint.connect(addr, alpnBytes(protocol)), (cause) => cause))
        if (attempt._tag === "Success") return { connection: attempt.success as IrohConnection, protocol }
        const cause = attempt.failure
        if (i === candidates.length - 1 || !isAlpnRefusal(cause)) {
          return yield* new ConnectFailed({ peer, transport: "iroh", cause })
        }
        refusedAt.set(protocol.alpn, yield* Clock.currentTimeMillis)
        yield* Metric.update(versionRefused, 1)
        yield* Effect.logInfo(`peer ${peer} does not speak ${protocol.alpn}; dialling ${candidates[i + 1]!.alpn}`)
      }
    })

  return {
    kind: "iroh",
    connect: Effect.gen(function*() {
      const addr = options.address()
      if (addr === undefined) {
        return yield* new ConnectFailed({ peer, transport: "iroh", cause: "no iroh endpoint id or ticket for this peer" })
      }
      // Not acquireRelease: its acquire step cannot be interrupted, and a peer removed or a node
      // shut down while a dial hangs must not wait for the dial's timeout.
      const timedOut = Effect.fail(new ConnectFailed({ peer, transport: "iroh", cause: `timed out after ${connectTimeoutMs} ms` }))
      const { connection, protocol } = yield* dial(addr).pipe(
        Effect.timeoutOrElse({ duration: connectTimeoutMs, orElse: () => timedOut })
      )
      const { version, acked } = protocol
      yield* Effect.addFinalizer(() => Effect.sync(() => connection.close(ErrorCode.Normal, "")))
      const rides = ridesAcks(version) ? options.rides : undefined
      const sessionId = crypto.getRandomValues(new BigUint64Array(1))[0]!
      const lead = (cls: PriorityClass): Uint8Array => {
        const head = preamble(cls, version)
        if (!ridesAcks(version)) return head
        const out = new Uint8Array(head.length + SESSION_ID_BYTES)
        out.set(head)
        new DataView(out.buffer).setBigUint64(head.length, sessionId)
        return out
      }

      // All four streams are opened, prioritised and announced (preamble) with the connection,
      // not on their first write: the first vote after a (re)connect then never waits for a
      // stream to be set up at both ends while appends already flow. (Opened lazily, a vote sent
      // behind 1,000 appends arrived after 600 of them when the binding ran in a worker thread.)
      const streams: ReadonlyArray<IrohSendStream> = yield* irohCall(
        () =>
          Promise.all(priorityClasses.map(async (cls) => {
            const stream = await connection.openUni(STREAM_PRIORITY[cls]!)
            await stream.writeFrames([], lead(cls))
            return stream
          })),
        (cause) => new ConnectFailed({ peer, transport: "iroh", cause: `opening the class streams failed: ${cause}` })
      ).pipe(Effect.timeoutOrElse({ duration: connectTimeoutMs, orElse: () => timedOut }))
      // Settled by whichever notices first: the connection's own close, or the probe declaring
      // the path dead. A write pending in the binding is failed with it at once: one on a
      // connection the peer closed could stay pending for up to ~100 ms (measured in the
      // failover benchmark) and hold its class back from the fallback route meanwhile.
      const closed = yield* Deferred.make<string>()
      let rejectWrites: (error: Error) => void = () => undefined
      const writesEnded = new Promise<never>((_, reject) => {
        rejectWrites = reject
      })
      writesEnded.catch(() => undefined) // only ever raced against a write, never awaited alone
      const markClosed = (reason: string) =>
        Effect.andThen(Effect.sync(() => rejectWrites(new Error(`connection closed: ${reason}`))), Deferred.succeed(closed, reason))

      const watch: DarkSampler | undefined = options.darkAfterMs > 0
        ? yield* forkDarkSampler({
          peer,
          connection,
          darkAfterMs: options.darkAfterMs,
          // The peer's acknowledgement of a heartbeat answer waits for its next write here, as
          // long as this node's own such counts wait (`AckRides.quietWaitMs`).
          lateAnswerMs: rides?.quietWaitMs ?? 0,
          stopped: () => Deferred.isDoneUnsafe(closed),
          onDark: (reason) => markClosed(reason).pipe(Effect.asVoid)
        })
        : undefined
      const send: Send = (cls, payloads, lead, answeredLate) =>
        irohCall(
          () => {
            watch?.noteSent(answeredLate)
            return Promise.race([streams[cls]!.writeFrames(payloads, lead), writesEnded])
          },
          (cause) => new StreamFailed({ peer, transport: "iroh", class: className(cls), cause })
        )
      const carry = rides === undefined ? noRides : () => rides.carry(peer)
      const blocks = version === 1 ? undefined : writeBlocks(send, compression, maxBlockRaw, carry)
      const write = blocks?.write ?? writeV1(send)

      const pingFailed = (cause: string) => new StreamFailed({ peer, transport: "iroh", class: className(PriorityClass.Election), cause })
      const ping = Effect.gen(function*() {
        let started = 0
        yield* irohCall(() => {
          watch?.noteSent()
          started = performance.now()
          return connection.ping()
        }, pingFailed)
        // The echo came back on this connection after the ping went out: the path works.
        watch?.answered()
        return performance.now() - started
      }).pipe(
        Effect.timeoutOrElse({
          duration: options.probeTimeoutMs,
          orElse: () => Effect.fail(pingFailed(`no ping answer within ${options.probeTimeoutMs} ms`))
        })
      )

      // `_signal` keeps the wait interruptible (see irohCall).
      yield* Effect.forkScoped(
        Effect.promise((_signal) => connection.closed().catch((error: unknown) => irohErrorMessage(error))).pipe(
          Effect.flatMap(markClosed)
        ),
        { startImmediately: true }
      )
      const acks = acked ? new AckLedger() : undefined
      // An acknowledgement that confirms more than before also answers the dark watch's wait,
      // whether it came on this connection's acknowledgement stream or rode on the peer's own
      // connection: the peer took what came on this connection since. Without it the wait lasts
      // until its first sample of the counters, a wake-up of the loop per heartbeat.
      const ack = acks === undefined ? undefined : (cls: PriorityClass, cumulative: number) => {
        const before = acks.confirmed(cls)
        acks.ack(cls, cumulative)
        if (acks.confirmed(cls) > before) watch?.answered()
      }
      if (ack !== undefined) yield* Effect.forkScoped(readAcks(peer, connection, ack), { startImmediately: true })
      if (rides !== undefined && ack !== undefined) {
        yield* Effect.acquireRelease(Effect.sync(() => rides.addSession(peer, sessionId, ack)), (remove) => Effect.sync(remove))
        yield* Effect.acquireRelease(Effect.sync(() => rides.addCarrier(peer)), (remove) => Effect.sync(remove))
      }
      const probe = yield* forkProbe({
        ping,
        intervalMs: options.probeIntervalMs,
        failuresBeforeDead: options.probeFailuresBeforeClose,
        onDead: (reason) => markClosed(reason).pipe(Effect.asVoid),
        stopped: () => Deferred.isDoneUnsafe(closed),
        confirmations: options.skipPingsWhileConfirmed === true ? acks?.totals : undefined,
        skipWhileQuiet: options.skipPingsWhileQuiet,
        refreshMs: options.pingRefreshMs
      }, { peer: String(peer), transport: "iroh" })
      const ledger: DeliveryLedger = acks ?? new ProbeLedger(probe.confirmedAt)

      const session: LinkSession = {
        kind: "iroh",
        // Frames are bounded by max_frame_bytes, which the actor applies itself.
        maxPayloadBytes: Number.POSITIVE_INFINITY,
        write,
        snapshotChunkBytes: blocks?.snapshotChunkBytes,
        closed: Deferred.await(closed),
        // The probe's estimate only, as for gRPC: its first answer comes within a round trip
        // of connecting. QUIC's own `rtt()` right after a handshake can be far off (79 ms on
        // loopback after a reconnect), and one such value moves an adaptive route and back.
        rttMs: probe.rttMs,
        ledger,
        heardAt: watch?.heardAt
      }
      return session
    })
  }
}

type Send = (
  cls: PriorityClass,
  payloads: ReadonlyArray<Uint8Array>,
  lead: Uint8Array | undefined,
  answeredLate: boolean | undefined
) => Effect.Effect<void, StreamFailed>

/** Version 1: the frames as they are. */
const writeV1 = (send: Send): LinkSession["write"] => (cls, payloads, framedBytes, answeredLate) =>
  Effect.as(send(cls, payloads, undefined, answeredLate), framedBytes)

/**
 * Version 2: each write is one block (`message/blocks.ts`), compressed when that pays, with
 * its bytes before and after counted per class. A write above `maxBlockRaw` (a batch cap set
 * above `max_frame_bytes`) goes as several blocks, so the receiver's bound holds.
 */
const noRides = (): undefined => undefined

const writeBlocks = (
  send: Send,
  compression: CompressionOptions,
  maxBlockRaw: number,
  /** The header extension for the next block: acknowledgements riding on it (version 3). */
  carry: () => Uint8Array | undefined
): { readonly write: LinkSession["write"]; readonly snapshotChunkBytes: () => number | undefined } => {
  const encoders = priorityClasses.map((cls) => new BlockEncoder(cls, compression))
  const acksCarried = M.series(M.acknowledgements, { transport: "iroh", how: "carried" })
  const metrics = priorityClasses.map((cls) => {
    const labels = { class: className(cls), transport: "iroh" }
    return {
      framed: M.series(M.compressionFramedBytes, labels),
      wire: M.series(M.compressionWireBytes, labels),
      didNotShrink: M.series(M.batchesUncompressed, { ...labels, reason: "did_not_shrink" }),
      backingOff: M.series(M.batchesUncompressed, { ...labels, reason: "backing_off" })
    }
  })
  const writeBlock = Effect.fnUntraced(function*(
    cls: PriorityClass,
    payloads: ReadonlyArray<Uint8Array>,
    framedBytes: number,
    answeredLate: boolean | undefined
  ) {
    const extension = carry()
    const block = encoders[cls]!.encode(payloads, framedBytes, extension)
    // Counted as handed to the write, before the peer can have it.
    if (extension !== undefined) yield* Metric.update(acksCarried, 1)
    yield* send(cls, block.payloads, block.lead, answeredLate)
    const m = metrics[cls]!
    yield* Metric.update(m.framed, block.framedBytes)
    yield* Metric.update(m.wire, block.wireBytes)
    if (block.outcome === "did_not_shrink") yield* Metric.update(m.didNotShrink, 1)
    else if (block.outcome === "backing_off") yield* Metric.update(m.backingOff, 1)
    return block.wireBytes
  })
  const snapshots = encoders[PriorityClass.Snapshot]!
  const snapshotChunkBytes = () => snapshots.shrinking ? compression.snapshotChunkBytes : undefined
  const write: LinkSession["write"] = (cls, payloads, framedBytes, answeredLate) => {
    if (framedBytes <= maxBlockRaw) return writeBlock(cls, payloads, framedBytes, answeredLate)
    return Effect.gen(function*() {
      let wireBytes = 0
      let start = 0
      while (start < payloads.length) {
        let bytes = 0
        let end = start
        while (end < payloads.length && (end === start || bytes + FRAME_HEADER_LENGTH + payloads[end]!.length <= maxBlockRaw)) {
          bytes += FRAME_HEADER_LENGTH + payloads[end]!.length
          end++
        }
        wireBytes += yield* writeBlock(cls, payloads.slice(start, end), bytes, answeredLate)
        start = end
      }
      return wireBytes
    })
  }
  return { write, snapshotChunkBytes }
}
