import * as grpc from "@grpc/grpc-js"
import { Deferred, Effect, Metric, type Scope } from "effect"
import { readFileSync } from "node:fs"
import { className, PriorityClass } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import type { Link, LinkSession } from "../peer/link.ts"
import { AckLedger, ProbeLedger } from "../peer/delivery-ledger.ts"
import { forkProbe, type PingSkipping } from "../peer/probe.ts"
import { ConnectFailed, describeCause, StreamFailed } from "../domain/errors.ts"
import { encodeMessageBatch, maxPayloadInBatch, splitBatches } from "./batch-encoding.ts"
import {
  type Ack,
  decodeAck,
  decodePingReply,
  encodePingRequest,
  MetadataKey,
  passThrough,
  PING_PATH,
  type PingReply,
  type PingRequest,
  STREAM_ACKED_PATH,
  STREAM_PATH
} from "./service-definition.ts"

export interface GrpcLinkTls {
  /** CA that the server's certificate must chain to (default: the system roots). */
  readonly caFile?: string | undefined
  /** Client certificate and key, for servers that require one. */
  readonly certFile?: string | undefined
  readonly keyFile?: string | undefined
  /** Name to check the server certificate against when it differs from the dialled host. */
  readonly serverName?: string | undefined
}

export interface GrpcLinkOptions extends PingSkipping {
  readonly self: NodeId
  readonly peer: NodeId
  /** The peer's `host:port`, read at every dial (the peer table may change). */
  readonly address: () => string | undefined
  readonly clusterId: string
  readonly token?: string | undefined
  readonly tls?: GrpcLinkTls | undefined
  /** Bound on channel readiness plus the first (authenticating) ping. */
  readonly connectTimeoutMs: number
  /** The peer's `max_receive_message_length`: every `MessageBatch` is kept within it. */
  readonly maxMessageBytes: number
  /** Interval of the RTT probe (default 1000 ms). */
  readonly probeIntervalMs?: number | undefined
  /** Deadline of one probe (default 2000 ms). */
  readonly probeTimeoutMs?: number | undefined
  /** Consecutive failed probes after which the session is reported closed (default 3). */
  readonly probeFailuresBeforeClose?: number | undefined
  /** How long closing a session waits for its streams to end cleanly (default 1000 ms). */
  readonly closeGraceMs?: number | undefined
}

export interface GrpcLink extends Link {
  readonly kind: "grpc"
  readonly connect: Effect.Effect<LinkSession, ConnectFailed, Scope.Scope>
}

/** The class a failed ping is reported under (`StreamFailed` names a class). */
const PING_CLASS = PriorityClass.Heartbeat

const nowMicros = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000)

interface ClassStream {
  readonly call: grpc.ClientWritableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Ack>
  /** Why the call ended, once it has. */
  ended: string | undefined
  readonly onEnd: Set<(reason: string) => void>
}

const statusText = (error: grpc.ServiceError): string =>
  `${grpc.status[error.code] ?? error.code}: ${error.details || error.message}`

const channelCredentials = (tls: GrpcLinkTls | undefined): grpc.ChannelCredentials =>
  tls === undefined
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(
      tls.caFile === undefined ? null : readFileSync(tls.caFile),
      tls.keyFile === undefined ? null : readFileSync(tls.keyFile),
      tls.certFile === undefined ? null : readFileSync(tls.certFile)
    )

/**
 * The outbound gRPC link to one peer: a channel (its own subchannel, so our connector's
 * backoff, not grpc-js's, paces redials), one long-lived client-streaming `Stream` call per
 * class opened lazily on the first write of that class, and a `Ping` probe that keeps a
 * smoothed RTT. `connect` succeeds only once the channel is ready and a first ping was
 * answered, so a wrong cluster id, token or address is a `ConnectFailed` (backed off), not a
 * session that fails on its first write.
 */
export const makeGrpcLink = (options: GrpcLinkOptions): GrpcLink => {
  const { peer, self } = options
  const probeIntervalMs = options.probeIntervalMs ?? 1000
  const probeTimeoutMs = options.probeTimeoutMs ?? 2000
  const probeFailuresBeforeClose = options.probeFailuresBeforeClose ?? 3
  const closeGraceMs = options.closeGraceMs ?? 1000

  const connectFailed = (cause: unknown) => new ConnectFailed({ peer, transport: "grpc", cause: describeCause(cause) })
  const streamFailed = (cls: PriorityClass, cause: unknown) =>
    new StreamFailed({ peer, transport: "grpc", class: className(cls), cause: describeCause(cause) })

  const metadata = (cls: PriorityClass | undefined): grpc.Metadata => {
    const m = new grpc.Metadata()
    m.set(MetadataKey.From, String(self))
    m.set(MetadataKey.To, String(peer))
    m.set(MetadataKey.Cluster, options.clusterId)
    if (cls !== undefined) m.set(MetadataKey.Class, String(cls))
    if (options.token !== undefined) m.set(MetadataKey.Token, options.token)
    return m
  }

  /** READY within the deadline; TRANSIENT_FAILURE fails at once (the connector backs off). */
  const waitReady = (client: grpc.Client, address: string, timeoutMs: number): Effect.Effect<void, ConnectFailed> =>
    Effect.callback<void, ConnectFailed>((resume) => {
      const channel = client.getChannel()
      const deadline = Date.now() + timeoutMs
      let done = false
      const finish = (effect: Effect.Effect<void, ConnectFailed>) => {
        if (done) return
        done = true
        resume(effect)
      }
      const check = (error?: Error) => {
        if (done) return
        if (error !== undefined) return finish(Effect.fail(connectFailed(`${address} not ready within ${timeoutMs} ms`)))
        try {
          const state = channel.getConnectivityState(true)
          if (state === grpc.connectivityState.READY) return finish(Effect.void)
          if (state === grpc.connectivityState.TRANSIENT_FAILURE) {
            return finish(Effect.fail(connectFailed(`${address} unreachable (connection or TLS handshake failed)`)))
          }
          if (state === grpc.connectivityState.SHUTDOWN) return finish(Effect.fail(connectFailed("channel shut down")))
          channel.watchConnectivityState(state, deadline, check)
        } catch (cause) {
          finish(Effect.fail(connectFailed(cause)))
        }
      }
      check()
      return Effect.sync(() => {
        done = true
      })
    })

  const connect: Effect.Effect<LinkSession, ConnectFailed, Scope.Scope> = Effect.gen(function*() {
    const address = options.address()
    if (address === undefined) return yield* Effect.fail(connectFailed("no gRPC address for this peer"))
    const startedAt = Date.now()
    const credentials = yield* Effect.try({
      try: () => channelCredentials(options.tls),
      catch: (cause) => connectFailed(`TLS setup: ${describeCause(cause)}`)
    })
    // Each client owns a private subchannel ("grpc.use_local_subchannel_pool"), hence its own
    // TCP connection: our connector paces redials, not grpc-js's shared reconnect backoff.
    const makeClient = Effect.acquireRelease(
      Effect.try({
        try: () =>
          new grpc.Client(address, credentials, {
            "grpc.max_send_message_length": options.maxMessageBytes,
            "grpc.use_local_subchannel_pool": 1,
            // Retries would buffer (copy) every streamed batch; a lost session is ours to handle.
            "grpc.enable_retries": 0,
            ...(options.tls?.serverName !== undefined ? { "grpc.ssl_target_name_override": options.tls.serverName } : {})
          }),
        catch: connectFailed
      }),
      (c) => Effect.sync(() => c.close())
    )
    const client = yield* makeClient
    // The snapshot class gets a connection of its own: on a shared HTTP/2 connection a vote's
    // frame waits in the socket buffer behind megabytes of snapshot data. The channel stays
    // idle, with no connection, until the first snapshot is sent.
    const bulkClient = yield* makeClient
    yield* waitReady(client, address, options.connectTimeoutMs)
    const channel = client.getChannel()

    const closed = Deferred.makeUnsafe<string>()
    let closeReason: string | undefined
    const markClosed = (reason: string) => {
      if (closeReason !== undefined) return
      closeReason = reason
      Deferred.doneUnsafe(closed, Effect.succeed(reason))
    }

    // The channel's state: TRANSIENT_FAILURE (connection lost, redial failing) or SHUTDOWN
    // ends the session even while no call is open.
    const watch = (state: grpc.connectivityState): void => {
      if (state === grpc.connectivityState.TRANSIENT_FAILURE || state === grpc.connectivityState.SHUTDOWN) {
        return markClosed(`channel ${grpc.connectivityState[state]}`)
      }
      try {
        channel.watchConnectivityState(state, Infinity, () => watch(channel.getConnectivityState(false)))
      } catch (cause) {
        markClosed(`channel watch failed: ${describeCause(cause)}`)
      }
    }
    watch(channel.getConnectivityState(false))

    /** One round trip in ms, not yet folded into the estimate. */
    const ping: Effect.Effect<number, StreamFailed> = Effect.callback<number, StreamFailed>((resume) => {
      const sent = nowMicros()
      let call: grpc.ClientUnaryCall
      try {
        call = client.makeUnaryRequest<PingRequest, PingReply>(
          PING_PATH,
          encodePingRequest,
          decodePingReply,
          { sentAtMicros: sent },
          metadata(undefined),
          { deadline: Date.now() + probeTimeoutMs },
          (error, reply) => {
            if (error !== null) return resume(Effect.fail(streamFailed(PING_CLASS, `ping: ${statusText(error)}`)))
            if (reply === undefined || reply.sentAtMicros !== sent) {
              return resume(Effect.fail(streamFailed(PING_CLASS, "ping: reply does not echo the request")))
            }
            resume(Effect.succeed((nowMicros() - sent) / 1000))
          }
        )
      } catch (cause) {
        return resume(Effect.fail(streamFailed(PING_CLASS, `ping: ${describeCause(cause)}`)))
      }
      return Effect.sync(() => call.cancel())
    })
    // The first ping authenticates us (cluster id, token, our id known to the peer, its id
    // what we think it is). Its time includes the first call's setup, so it is no RTT sample.
    const remainingMs = Math.max(1, options.connectTimeoutMs - (Date.now() - startedAt))
    yield* ping.pipe(
      Effect.timeoutOrElse({
        duration: remainingMs,
        orElse: () => Effect.fail(connectFailed(`first ping not answered within ${options.connectTimeoutMs} ms`))
      }),
      Effect.mapError((error) => error._tag === "StreamFailed" ? connectFailed(error.cause) : error)
    )

    const streams: Array<ClassStream | undefined> = [undefined, undefined, undefined, undefined]

    const endStream = (cls: PriorityClass, stream: ClassStream, reason: string) => {
      if (stream.ended !== undefined) return
      stream.ended = reason
      for (const f of [...stream.onEnd]) f(reason)
      stream.onEnd.clear()
      markClosed(`${className(cls)} stream ended: ${reason}`)
    }

    // The peer's acknowledgements, when it sends them (`StreamAcked`, found out at connect).
    const acks = new AckLedger()
    let acked = false

    /**
     * Opens a class stream: `StreamAcked` when the peer acknowledges, else `Stream`.
     * `onUnimplemented`, when given, takes an UNIMPLEMENTED answer to `StreamAcked` (an older
     * peer) instead of it ending the session.
     */
    const open = (cls: PriorityClass, withAcks = acked, onUnimplemented?: () => void): ClassStream => {
      const onEnd = new Set<(reason: string) => void>()
      let stream: ClassStream | undefined
      let early: string | undefined
      const end = (reason: string) => stream === undefined ? (early = reason) : endStream(cls, stream, reason)
      const owner = cls === PriorityClass.Snapshot ? bulkClient : client
      let call: ClassStream["call"]
      if (withAcks) {
        const duplex = owner.makeBidiStreamRequest<Buffer, Ack>(STREAM_ACKED_PATH, passThrough, decodeAck, metadata(cls), {})
        duplex.on("data", (ack: Ack) => acks.ack(cls, ack.received))
        duplex.on("status", (status: grpc.StatusObject) => {
          if (status.code === grpc.status.OK) end(`closed by the peer after ${acks.confirmed(cls)} acknowledged message(s)`)
        })
        call = duplex
      } else {
        call = owner.makeClientStreamRequest<Buffer, Ack>(
          STREAM_PATH,
          passThrough,
          decodeAck,
          metadata(cls),
          {},
          (error, ack) =>
            end(error !== null ? statusText(error) : `closed by the peer after ${ack?.received ?? 0} message(s)`)
        )
      }
      // A writable without an 'error' listener would throw into the event loop.
      call.on("error", (error: Error) => {
        if (onUnimplemented !== undefined && (error as Partial<grpc.ServiceError>).code === grpc.status.UNIMPLEMENTED) {
          if (streams[cls] === stream) streams[cls] = undefined
          return onUnimplemented()
        }
        end(withAcks ? statusText(error as grpc.ServiceError) : error.message)
      })
      stream = { call, ended: undefined, onEnd }
      streams[cls] = stream
      if (early !== undefined) endStream(cls, stream, early)
      return stream
    }

    // Whether the peer acknowledges: the election stream is opened with acknowledgements at
    // once, and the peer's response headers say yes, UNIMPLEMENTED that it is an older node.
    acked = yield* Effect.callback<boolean>((resume) => {
      let settled = false
      const settle = (value: boolean) => {
        if (settled) return
        settled = true
        resume(Effect.succeed(value))
      }
      const stream = open(PriorityClass.Election, true, () => settle(false))
      stream.call.once("metadata", () => settle(true))
      stream.onEnd.add(() => settle(false))
    }).pipe(
      Effect.timeoutOrElse({
        duration: Math.max(1, options.connectTimeoutMs - (Date.now() - startedAt)),
        orElse: () => Effect.fail(connectFailed(`no answer to StreamAcked within ${options.connectTimeoutMs} ms`))
      })
    )
    if (closeReason !== undefined) return yield* Effect.fail(connectFailed(closeReason))

    /** One `MessageBatch`; completes once grpc-js accepted it (after 'drain' when buffered). */
    const writeOne = (cls: PriorityClass, stream: ClassStream, batch: Buffer): Effect.Effect<void, StreamFailed> =>
      Effect.callback<void, StreamFailed>((resume) => {
        if (stream.ended !== undefined) return resume(Effect.fail(streamFailed(cls, stream.ended)))
        let flushed: boolean
        try {
          flushed = stream.call.write(batch)
        } catch (cause) {
          return resume(Effect.fail(streamFailed(cls, cause)))
        }
        if (flushed) return resume(Effect.void)
        const cleanup = () => {
          stream.call.off("drain", onDrain)
          stream.onEnd.delete(onEnd)
        }
        const onDrain = () => {
          cleanup()
          resume(Effect.void)
        }
        const onEnd = (reason: string) => {
          cleanup()
          resume(Effect.fail(streamFailed(cls, reason)))
        }
        stream.call.on("drain", onDrain)
        stream.onEnd.add(onEnd)
        return Effect.sync(cleanup)
      })

    // The actor drops what exceeds `maxPayloadBytes` before writing (as `too_large`, once);
    // this only catches a caller that does not, so nothing oversize reaches grpc-js.
    const dropOversize = (cls: PriorityClass, count: number) => {
      const labels = { peer: String(peer), class: className(cls), reason: "too_large" }
      return Effect.andThen(
        Metric.update(Metric.withAttributes(M.messagesDropped, labels), count),
        Effect.logWarning(
          `dropped ${count} message(s) to peer ${peer}: larger than the gRPC message limit of ${options.maxMessageBytes} bytes`
        ).pipe(Effect.annotateLogs({ ...labels, transport: "grpc" }))
      )
    }

    const write = (cls: PriorityClass, payloads: ReadonlyArray<Uint8Array>): Effect.Effect<number, StreamFailed> =>
      Effect.suspend(() => {
        if (closeReason !== undefined) return Effect.fail(streamFailed(cls, `session closed: ${closeReason}`))
        let stream = streams[cls]
        if (stream === undefined) {
          try {
            stream = open(cls)
          } catch (cause) {
            return Effect.fail(streamFailed(cls, cause))
          }
        }
        const { batches, oversize } = splitBatches(payloads, options.maxMessageBytes)
        const s = stream
        let wireBytes = 0
        const writeBatch = (batch: ReadonlyArray<Uint8Array>) => {
          const encoded = encodeMessageBatch(batch)
          wireBytes += encoded.length
          return writeOne(cls, s, encoded)
        }
        // `wireBytes` is read once the writes ran: it is summed as they go.
        const writes = Effect.map(
          batches.length === 1 ? writeBatch(batches[0]!) : Effect.forEach(batches, writeBatch, { discard: true }),
          () => wireBytes
        )
        return oversize === 0 ? writes : Effect.andThen(dropOversize(cls, oversize), writes)
      })

    // Closing the session: half-close every open stream (the peer delivers what it read and
    // acks), wait a little for that, then cancel what is left. Runs before `client.close()`.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        markClosed("session closed")
        const open = streams.filter((s): s is ClassStream => s !== undefined && s.ended === undefined)
        if (open.length === 0) return
        const allEnded = Effect.callback<void>((resume) => {
          let pending = open.length
          const one = () => {
            if (--pending === 0) resume(Effect.void)
          }
          for (const s of open) s.onEnd.add(one)
          for (const s of open) s.call.end()
          return Effect.sync(() => {
            for (const s of open) s.onEnd.delete(one)
          })
        })
        yield* Effect.timeoutOption(allEnded, closeGraceMs)
        for (const s of open) if (s.ended === undefined) s.call.cancel()
      })
    )

    // Too many failed pings in a row mean the path is dead even if TCP has not noticed.
    const probe = yield* forkProbe({
      ping: ping,
      intervalMs: probeIntervalMs,
      failuresBeforeDead: probeFailuresBeforeClose,
      onDead: (reason) => Effect.sync(() => markClosed(reason)),
      stopped: () => closeReason !== undefined,
      confirmations: acked && options.skipPingsWhileConfirmed === true ? acks.totals : undefined,
      skipWhileQuiet: options.skipPingsWhileQuiet,
      refreshMs: options.pingRefreshMs
    }, { peer: String(peer), transport: "grpc" })

    const session: LinkSession = {
      kind: "grpc",
      maxPayloadBytes: maxPayloadInBatch(options.maxMessageBytes),
      write,
      closed: Deferred.await(closed),
      rttMs: probe.rttMs,
      ledger: acked ? acks : new ProbeLedger(probe.confirmedAt)
    }
    return session
  })

  return { kind: "grpc", connect }
}
