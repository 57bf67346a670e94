import * as grpc from "@grpc/grpc-js"
import type { AuthContext } from "@grpc/grpc-js/build/src/auth-context.js"
import { Cause, Effect, Exit, FiberSet, Metric, type Scope } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import { defaultInboundLimits, type InboundShared, makeInboundShared } from "../inbound/inbound-limits.ts"
import { decodeSpans } from "../message/codec.ts"
import { scanBatch } from "../message/decode-limits.ts"
import { DecodeFailed } from "../message/errors.ts"
import { className, isPriorityClass, type PriorityClass } from "../message/priority.ts"
import type { NodeId, RaftMessage } from "../message/types.ts"
import * as M from "../metrics/metrics.ts"
import { makeRefusalLog } from "../metrics/refusal-log.ts"
import { describeCause, TransportStartFailed } from "../domain/errors.ts"
import { InboundDelivery } from "../inbound/inbound-delivery.ts"
import { type Receipts, StreamReceipts } from "../inbound/inbound-receipts.ts"
import type { InboundMailbox } from "../inbound/inbound-mailbox.ts"
import type { PeerTable } from "../domain/peer-table.ts"
import { ConnectionGuard, listenAll, splitBindAddress } from "./connection-guard.ts"
import { type Ack, decodePingRequest, MetadataKey, type PingReply, raftTransportService } from "./service-definition.ts"

export interface GrpcServerTls {
  readonly certFile: string
  readonly keyFile: string
  /** CA that client certificates must chain to; needed when `requireClientCert`. */
  readonly caFile?: string | undefined
  readonly requireClientCert: boolean
  /**
   * Bind identity to the client certificate: a call is accepted only when the certificate
   * names the sender, as a URI SAN `raft://<cluster_id>/<node_id>` matching `x-raft-from`.
   */
  readonly bindIdentity?: boolean | undefined
}

export interface GrpcServerOptions {
  /** `host:port`; port 0 picks a free port (see `GrpcServer.address`). */
  readonly bindAddress: string
  readonly self: NodeId
  readonly clusterId: string
  /** When set, every call must carry it in `x-raft-token`. */
  readonly token?: string | undefined
  readonly tls?: GrpcServerTls | undefined
  readonly peers: PeerTable
  readonly mailbox: InboundMailbox
  /** `grpc.max_receive_message_length`: the largest `MessageBatch` accepted. */
  readonly maxMessageBytes: number
  readonly maxSnapshotBytes: number
  /** Limits, snapshot budget and refusal log shared with the Iroh acceptor; absent: defaults of its own. */
  readonly inbound?: InboundShared | undefined
  /** How long a graceful shutdown may take before open calls are cut (default 1000 ms). */
  readonly shutdownGraceMs?: number | undefined
  /** Told of every admitted call's sender: a peer that calls is up (see `Connector.wake`). */
  readonly onPeerSeen?: ((peer: NodeId) => Effect.Effect<void>) | undefined
}

export interface GrpcServer {
  /** The address actually bound, `host:port` (the port resolved when 0 was asked for). */
  readonly address: string
  readonly port: number
  /**
   * Ends every inbound call from `peer` (membership change), like the Iroh acceptor's
   * `InboundConnections.closeAll`. Calls are also re-checked against the peer table per batch.
   */
  readonly closePeer: (peer: NodeId) => void
}

export type RefuseReason = "wrong_cluster" | "bad_token" | "unknown_peer" | "bad_metadata" | "cert_mismatch"

/** The outcome of checking a call's metadata. */
export type CallCheck = CallAccepted | CallRefused

export interface CallAccepted {
  readonly _tag: "Accepted"
  readonly peer: NodeId
  readonly cls: PriorityClass | undefined
}

export interface CallRefused {
  readonly _tag: "Refused"
  readonly code: grpc.status
  readonly reason: RefuseReason
  readonly detail: string
}

export interface CallCheckContext {
  readonly self: NodeId
  readonly clusterId: string
  readonly token: string | undefined
  readonly peers: PeerTable
  /** When set, the raft id the caller's client certificate names must equal `x-raft-from`. */
  readonly bindIdentity?: boolean | undefined
}

/** The raft id a client certificate names in a `raft://<cluster>/<id>` URI SAN, if any. */
export const certificateRaftId = (subjectAltName: string | undefined, clusterId: string): NodeId | undefined => {
  const prefix = `URI:raft://${clusterId}/`
  for (const entry of (subjectAltName ?? "").split(",")) {
    const name = entry.trim()
    if (name.startsWith(prefix)) {
      const id = Number(name.slice(prefix.length))
      if (Number.isSafeInteger(id) && id > 0) return id
    }
  }
  return undefined
}

const single = (metadata: grpc.Metadata, key: string): string | undefined => {
  const values = metadata.get(key)
  if (values.length !== 1) return undefined
  const value = values[0]
  return typeof value === "string" ? value : undefined
}

const parseId = (text: string | undefined): NodeId | undefined => {
  if (text === undefined || !/^[0-9]{1,16}$/.test(text)) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : undefined
}

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest()

/** Constant-time comparison (hashing first makes the lengths equal). */
const tokenMatches = (given: string | undefined, expected: string): boolean =>
  given !== undefined && timingSafeEqual(digest(given), digest(expected))

const refused = (code: grpc.status, reason: RefuseReason, detail: string): CallRefused => ({
  _tag: "Refused",
  code,
  reason,
  detail
})

/**
 * Checks a call's metadata, in this order: cluster id, token (both UNAUTHENTICATED), the
 * well-formedness of sender, receiver and class and that the receiver is this node
 * (INVALID_ARGUMENT), and that the sender is a peer in the table other than this node
 * (PERMISSION_DENIED). The sender's identity is only what the metadata claims: see
 * `runGrpcServer`.
 */
export const checkCallMetadata = (
  metadata: grpc.Metadata,
  ctx: CallCheckContext,
  needsClass: boolean,
  /** The raft id named by the caller's client certificate (see `certificateRaftId`). */
  certificateId?: NodeId | undefined
): CallCheck => {
  const cluster = single(metadata, MetadataKey.Cluster)
  if (cluster !== ctx.clusterId) {
    return refused(grpc.status.UNAUTHENTICATED, "wrong_cluster", `cluster id ${JSON.stringify(cluster ?? null)} is not ${JSON.stringify(ctx.clusterId)}`)
  }
  if (ctx.token !== undefined && !tokenMatches(single(metadata, MetadataKey.Token), ctx.token)) {
    return refused(grpc.status.UNAUTHENTICATED, "bad_token", "missing or wrong cluster token")
  }
  const from = parseId(single(metadata, MetadataKey.From))
  if (from === undefined) return refused(grpc.status.INVALID_ARGUMENT, "bad_metadata", `missing or malformed ${MetadataKey.From}`)
  const to = parseId(single(metadata, MetadataKey.To))
  if (to !== ctx.self) {
    return refused(grpc.status.INVALID_ARGUMENT, "bad_metadata", `${MetadataKey.To} is ${to ?? "missing"}, but this is node ${ctx.self}`)
  }
  let cls: PriorityClass | undefined
  if (needsClass) {
    const parsed = parseId(single(metadata, MetadataKey.Class))
    if (parsed === undefined || !isPriorityClass(parsed)) {
      return refused(grpc.status.INVALID_ARGUMENT, "bad_metadata", `missing or unknown ${MetadataKey.Class}`)
    }
    cls = parsed
  }
  if (from === ctx.self || ctx.peers.get(from) === undefined) {
    return refused(grpc.status.PERMISSION_DENIED, "unknown_peer", `node ${from} is not a peer of node ${ctx.self}`)
  }
  if (ctx.bindIdentity === true && certificateId !== from) {
    return refused(
      grpc.status.PERMISSION_DENIED,
      "cert_mismatch",
      `caller claims node ${from} but its certificate names ${certificateId ?? "no raft id"}`
    )
  }
  return { _tag: "Accepted", peer: from, cls }
}

const deliveryFailedCounter = Metric.withAttributes(M.inboundErrors, { transport: "grpc", kind: "delivery_failed" })

const serverCredentials = (tls: GrpcServerTls | undefined): Effect.Effect<grpc.ServerCredentials, TransportStartFailed> =>
  tls === undefined
    ? Effect.succeed(grpc.ServerCredentials.createInsecure())
    : Effect.try({
      try: () =>
        grpc.ServerCredentials.createSsl(
          tls.caFile === undefined ? null : readFileSync(tls.caFile),
          [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }],
          tls.requireClientCert
        ),
      catch: (cause) => new TransportStartFailed({ transport: "grpc", cause: `TLS setup: ${describeCause(cause)}` })
    })

/** `host` of a `host:port` bind address (IPv6 keeps its brackets). */
const hostOf = (bindAddress: string): string => {
  const colon = bindAddress.lastIndexOf(":")
  return colon < 0 ? bindAddress : bindAddress.slice(0, colon)
}

/** How a class stream call answers its caller (see `serveClassStream`). */
interface StreamResponder {
  /** Absent: the caller expects no acknowledgements. */
  readonly receipts: Receipts | undefined
  /** The call passed its checks. */
  readonly admitted: () => void
  /** Ends the call, OK (`null`) or with `status`; `delivered` messages were handed to the mailbox. */
  readonly finish: (status: Partial<grpc.StatusObject> | null, delivered: number) => void
  /** The caller went away. */
  readonly cancelled: () => void
}

interface ActiveCall {
  readonly peer: NodeId
  readonly cls: PriorityClass
  readonly finish: (status: Partial<grpc.StatusObject> | null) => void
}

/** grpc-js's status text for a message over `grpc.max_receive_message_length`. */
const isOversize = (status: { readonly code: grpc.status; readonly details?: string | undefined }): boolean =>
  status.code === grpc.status.RESOURCE_EXHAUSTED && /larger than/.test(status.details ?? "")

/**
 * The gRPC server of this node: `raft.RaftTransport/Stream` calls, one per peer and class,
 * each feeding its own `InboundDelivery`, and `Ping`.
 *
 * Identity is weaker than on Iroh: the sender is whoever the `x-raft-from` metadata says,
 * vouched for only by the cluster id and the optional shared token (and by TLS, when the
 * client certificate is required, that the caller holds *some* certificate of the CA, not
 * which node it is). Every message's `from` is still checked against that claimed sender.
 *
 * Limits (`[transport.limits]`): connections are taken by a `ConnectionGuard` (a cap, a
 * handshake timeout, per-peer connections), grpc-js closes connections idle or old and caps
 * streams per connection, a newer call of a peer's class replaces the older, and a batch is
 * checked against the decode caps before it is decoded, a slice at a time.
 *
 * Backpressure: while a batch waits for room in the mailbox, its call is paused, so grpc-js
 * stops reading and HTTP/2 flow control slows the sender; nothing is dropped.
 */
export const runGrpcServer = (options: GrpcServerOptions): Effect.Effect<GrpcServer, TransportStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const credentials = yield* serverCredentials(options.tls)
    const inbound = options.inbound ?? (yield* makeInboundShared(defaultInboundLimits))
    const { limits } = inbound
    const intervalMs = limits.refusalLogIntervalMs
    const refusedLog = makeRefusalLog<string>({ counter: M.inboundRefused, attributes: { transport: "grpc" }, intervalMs })
    const errorLog = makeRefusalLog<string>({ counter: M.inboundErrors, attributes: { transport: "grpc" }, reasonKey: "kind", intervalMs })
    // Effects started from grpc-js callbacks run as fibers of this set: they share the
    // caller's context (logger, metrics) and are interrupted when the server's scope closes.
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const calls = new Set<ActiveCall>()
    const ctx: CallCheckContext = {
      self: options.self,
      clusterId: options.clusterId,
      token: options.token,
      peers: options.peers,
      bindIdentity: options.tls?.bindIdentity
    }

    const refuse = (reason: string, detail: string) => run(refusedLog.refuse(reason, detail))
    const error = (kind: string, detail: string) => run(errorLog.refuse(kind, detail))

    const guard = new ConnectionGuard(limits, refuse)

    const callerCertificateId = (call: { getAuthContext(): AuthContext | null }): NodeId | undefined =>
      options.tls?.bindIdentity === true
        ? certificateRaftId(call.getAuthContext()?.sslPeerCertificate?.subjectaltname, options.clusterId)
        : undefined

    /** The call's checked caller, or `undefined` once the call was refused, counted and logged. */
    const admit = (
      method: string,
      call: { readonly metadata: grpc.Metadata; getPeer(): string; getAuthContext(): AuthContext | null },
      requireClass: boolean,
      reject: (status: { code: grpc.status; details: string }) => void
    ): CallAccepted | undefined => {
      const check = checkCallMetadata(call.metadata, ctx, requireClass, callerCertificateId(call))
      if (check._tag === "Accepted") {
        guard.admitted(call.getPeer(), check.peer)
        if (options.onPeerSeen !== undefined) run(options.onPeerSeen(check.peer))
        return check
      }
      refuse(check.reason, `refused gRPC ${method} call from ${call.getPeer()}: ${check.detail}`)
      reject({ code: check.code, details: check.detail })
      return undefined
    }

    /**
     * One class stream call, `Stream` (answered once, at the end) or `StreamAcked` (answered
     * as the receiver goes): `responder` is the difference.
     */
    const serveClassStream = (call: grpc.ServerReadableStream<Buffer, Ack>, method: string, responder: StreamResponder) => {
      const remote = call.getPeer()
      const check = admit(method, call, true, (status) => responder.finish(status, 0))
      if (check === undefined) return
      responder.admitted()
      const peer = check.peer
      const cls = check.cls ?? 0 // always set: the class was required
      const labels = { transport: "grpc", peer: String(peer), class: className(cls) }
      const delivery = new InboundDelivery({
        self: options.self,
        peer,
        cls,
        transport: "grpc",
        mailbox: options.mailbox,
        maxSnapshotBytes: options.maxSnapshotBytes,
        snapshotBudget: inbound.snapshotBudget,
        refusalLogIntervalMs: intervalMs,
        receipts: responder.receipts
      })
      let finished = false
      /** Messages handed to the mailbox: what the `Ack` reports (not those dropped). */
      let delivered = 0
      const ended = () => {
        finished = true
        calls.delete(active)
        run(delivery.end)
      }
      const active: ActiveCall = {
        peer,
        cls,
        finish: (status) => {
          if (finished) return
          ended()
          responder.finish(status, delivered)
        }
      }
      // One call per peer and class: a sender opens a new one only after giving up the old.
      for (const other of calls) {
        if (other.peer === peer && other.cls === cls) {
          other.finish({ code: grpc.status.CANCELLED, details: "replaced by a newer call" })
          refuse("call_replaced", `a newer ${className(cls)} call of peer ${peer} replaced the older one`)
        }
      }
      calls.add(active)
      run(Effect.logDebug(`accepted ${className(cls)} stream from peer ${peer} (${remote})`).pipe(Effect.annotateLogs(labels)))

      const closeFor = (kind: string, code: grpc.status, detail: string) => {
        error(kind, `closing ${className(cls)} stream from peer ${peer}: ${detail}`)
        active.finish({ code, details: detail })
      }

      /** Checks the caps, then decodes and delivers a slice at a time, yielding between. */
      const receive = (batch: Buffer): Effect.Effect<void> =>
        Effect.gen(function*() {
          yield* delivery.countBytes(batch.length)
          const spans = scanBatch(batch, limits.decode)
          if (!Array.isArray(spans)) {
            return spans._tag === "DecodeLimitExceeded"
              ? closeFor(limitKind[spans.limit], grpc.status.RESOURCE_EXHAUSTED, spans.message)
              : closeFor("decode_failed", grpc.status.INVALID_ARGUMENT, `undecodable MessageBatch: ${spans.message}`)
          }
          let from = 0
          while (from < spans.length) {
            const messages: Array<RaftMessage> = []
            const slice = decodeSpans(batch, spans, from, limits.decode.maxMessageEntries, messages)
            delivered += yield* delivery.deliver(messages)
            if (slice.failure !== undefined) {
              return closeFor("decode_failed", grpc.status.INVALID_ARGUMENT, `undecodable MessageBatch: ${slice.failure.message}`)
            }
            from = slice.next
            if (from < spans.length) {
              yield* Effect.yieldNow
              if (finished) return
            }
          }
        })

      call.on("data", (batch: Buffer) => {
        if (finished) return
        if (options.peers.get(peer) === undefined) {
          const detail = `node ${peer} was removed from the peer table`
          refuse("unknown_peer", `refused gRPC ${method} call from ${remote}: ${detail}`)
          active.finish({ code: grpc.status.PERMISSION_DENIED, details: detail })
          return
        }
        // `deliver` runs inside the fiber: a throw in this grpc-js callback would surface as an
        // unhandled rejection, which ends a Node process. A defect ends this call instead.
        const fiber = run(receive(batch))
        const failed = (exit: Exit.Failure<void, never>) => {
          if (Cause.hasInterruptsOnly(exit.cause)) return // the server is shutting down
          run(Effect.andThen(
            Metric.update(deliveryFailedCounter, 1),
            Effect.logError(`closing ${className(cls)} stream from peer ${peer}: delivery failed`, exit.cause).pipe(Effect.annotateLogs(labels))
          ))
          active.finish({ code: grpc.status.INTERNAL, details: "delivery failed" })
        }
        // Usually done synchronously; when the mailbox is full or a long batch yields, stop
        // reading until it is done.
        const exit = fiber.pollUnsafe()
        if (exit === undefined) {
          call.pause()
          fiber.addObserver((exit) => {
            if (Exit.isFailure(exit)) failed(exit)
            else if (!finished) call.resume()
          })
        } else if (Exit.isFailure(exit)) {
          failed(exit)
        }
      })
      call.on("end", () => {
        if (finished) return
        active.finish(null)
        run(Effect.logDebug(`${className(cls)} stream from peer ${peer} ended after ${delivered} message(s)`).pipe(Effect.annotateLogs(labels)))
      })
      call.on("cancelled", () => {
        if (finished) return // the client went away after we answered
        ended()
        responder.cancelled()
        run(Effect.logDebug(`${className(cls)} stream from peer ${peer} cancelled`).pipe(Effect.annotateLogs(labels)))
      })
      call.on("error", (error: Error) => {
        run(Effect.logDebug(`${className(cls)} stream from peer ${peer} failed: ${error.message}`).pipe(Effect.annotateLogs(labels)))
        active.finish({ code: grpc.status.INTERNAL, details: "stream error" })
      })
    }

    const handleStream: grpc.handleClientStreamingCall<Buffer, Ack> = (call, callback) =>
      serveClassStream(call, "Stream", {
        receipts: undefined,
        admitted: () => undefined,
        finish: (status, delivered) => status === null ? callback(null, { received: delivered }) : callback(status),
        cancelled: () => undefined
      })

    const handleStreamAcked: grpc.handleBidiStreamingCall<Buffer, Ack> = (call) => {
      const receipts = new StreamReceipts((received) => void call.write({ received }))
      serveClassStream(call, "StreamAcked", {
        receipts,
        // Headers before any acknowledgement: the caller learns at once that this node acknowledges.
        admitted: () => call.sendMetadata(new grpc.Metadata()),
        finish: (status) => {
          // What was taken is acknowledged, before the status; what is still in the mailbox is
          // discarded (the caller counts it as lost once the call has ended).
          receipts.end(true)
          if (status === null) call.end()
          else call.emit("error", status)
        },
        cancelled: () => receipts.end(false)
      })
    }

    const handlePing: grpc.handleUnaryCall<Buffer, PingReply> = (call, callback) => {
      const check = admit("Ping", call, false, callback)
      if (check === undefined) return
      try {
        const request = decodePingRequest(call.request)
        callback(null, { sentAtMicros: request.sentAtMicros })
      } catch (cause) {
        error("decode_failed", `bad Ping from peer ${check.peer}: ${new DecodeFailed({ cause }).message}`)
        callback({ code: grpc.status.INVALID_ARGUMENT, details: "undecodable PingRequest" })
      }
    }

    // grpc-js ends a call whose message is over `max_receive_message_length` by itself, past
    // every handler and interceptor: only the base call's own `sendStatus` sees it.
    const countOversize: grpc.ServerInterceptor = (_method, call) => {
      const sendStatus = call.sendStatus.bind(call)
      call.sendStatus = (status) => {
        if (isOversize(status)) {
          error("message_too_large", `gRPC call from ${call.getPeer()} ended: ${status.details}`)
        }
        sendStatus(status)
      }
      return new grpc.ServerInterceptingCall(call)
    }

    const server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxMessageBytes,
      "grpc.max_concurrent_streams": limits.maxStreamsPerConnection,
      "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
      ...(limits.grpcMaxConnectionAgeMs > 0
        ? { "grpc.max_connection_age_ms": limits.grpcMaxConnectionAgeMs, "grpc.max_connection_age_grace_ms": limits.handshakeTimeoutMs }
        : {}),
      interceptors: [countOversize]
    })
    server.addService(raftTransportService, { Stream: handleStream, StreamAcked: handleStreamAcked, Ping: handlePing })
    const injector = server.createConnectionInjector(credentials)
    const onSocket = (socket: net.Socket) => {
      if (guard.accept(socket)) injector.injectConnection(socket)
    }

    const graceMs = options.shutdownGraceMs ?? 1000
    const { host, port: askedPort } = splitBindAddress(options.bindAddress)
    const { port, servers: listeners } = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => listenAll(host, askedPort, onSocket),
        catch: (cause) => new TransportStartFailed({ transport: "grpc", cause: `bind ${options.bindAddress}: ${describeCause(cause)}` })
      }),
      () =>
        Effect.gen(function*() {
          // Open streams are long-lived: end them (what was read is delivered), then let
          // grpc-js finish, cutting what is left after the grace period.
          const open = [...calls]
          for (const c of open) c.finish({ code: grpc.status.UNAVAILABLE, details: "server shutting down" })
          for (const listener of listeners) listener.close()
          yield* Effect.callback<void>((resume) => {
            let done = false
            const complete = () => {
              if (done) return
              done = true
              clearTimeout(timer)
              resume(Effect.void)
            }
            const timer = setTimeout(() => {
              injector.destroy()
              server.forceShutdown()
              complete()
            }, graceMs)
            injector.drain(graceMs)
            server.tryShutdown(() => complete())
          })
          guard.destroyAll()
          yield* Effect.logDebug(`gRPC server on ${options.bindAddress} stopped (${open.length} stream(s) ended)`)
        })
    )
    const address = `${hostOf(options.bindAddress)}:${port}`
    yield* Effect.logInfo(`gRPC server listening on ${address}`).pipe(
      Effect.annotateLogs({ transport: "grpc", tls: options.tls === undefined ? "off" : "on" })
    )
    return {
      address,
      port,
      closePeer: (peer) => {
        for (const c of [...calls]) {
          if (c.peer === peer) c.finish({ code: grpc.status.UNAVAILABLE, details: "peer removed" })
        }
      }
    }
  })

/** The inbound error kind each decode cap is counted under. */
const limitKind = {
  max_batch_messages: "too_many_messages",
  max_message_entries: "too_many_entries",
  max_batch_entries: "too_many_entries"
} as const
