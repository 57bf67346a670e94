import type * as grpc from "@grpc/grpc-js"
import { protoRoot } from "../message/codec.ts"

/**
 * The hand-written gRPC description of `service raft.RaftTransport` (proto/raft.proto).
 *
 * No proto-loader: `MessageBatch` goes over the wire as raw bytes (built from the
 * already-encoded `raft.Message` payloads on the client; on the server, checked against the
 * decode caps and decoded a slice at a time), and the small `Ack` / `PingRequest` / `PingReply` messages use the protobufjs types
 * of `protoRoot`, so there is one protobuf runtime in the process and no `Long`.
 */
export const SERVICE_NAME = "raft.RaftTransport"
export const STREAM_PATH = `/${SERVICE_NAME}/Stream`
export const STREAM_ACKED_PATH = `/${SERVICE_NAME}/StreamAcked`
export const PING_PATH = `/${SERVICE_NAME}/Ping`

/** Call metadata keys (lower-case, as HTTP/2 requires). */
export const MetadataKey = {
  /** The sender's raft id. */
  From: "x-raft-from",
  /** The receiver's raft id: a call that reaches the wrong node is refused. */
  To: "x-raft-to",
  /** The cluster id: a call from another cluster is refused. */
  Cluster: "x-raft-cluster",
  /** The priority class of a `Stream` call, 0..3 (election, heartbeat, append, snapshot). */
  Class: "x-raft-class",
  /** The optional shared token. */
  Token: "x-raft-token"
} as const

/**
 * On `Stream`, the one reply: the messages read. On `StreamAcked`, one of many: the cumulative
 * number of the stream's messages the receiver has handled (taken by its application, or
 * dropped there with a counted reason; a snapshot counts once, with its last chunk).
 */
export interface Ack {
  readonly received: number
}

export interface PingRequest {
  readonly sentAtMicros: number
}

export type PingReply = PingRequest

const AckType = protoRoot.lookupType("raft.Ack")
const PingRequestType = protoRoot.lookupType("raft.PingRequest")
const PingReplyType = protoRoot.lookupType("raft.PingReply")

const toBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Bytes pass through untouched (MessageBatch is encoded and decoded by the caller). */
export const passThrough = (bytes: Buffer): Buffer => bytes

export const encodeAck = (ack: Ack): Buffer => toBuffer(AckType.encode(ack as never).finish())
/** Throws on malformed input. */
export const decodeAck = (bytes: Buffer): Ack => {
  const decoded = AckType.decode(bytes) as unknown as { readonly received?: number }
  return { received: decoded.received ?? 0 }
}

export const encodePingRequest = (ping: PingRequest): Buffer => toBuffer(PingRequestType.encode(ping as never).finish())
/** Throws on malformed input. */
export const decodePingRequest = (bytes: Buffer): PingRequest => {
  const decoded = PingRequestType.decode(bytes) as unknown as { readonly sentAtMicros?: number }
  return { sentAtMicros: decoded.sentAtMicros ?? 0 }
}

export const encodePingReply = (reply: PingReply): Buffer => toBuffer(PingReplyType.encode(reply as never).finish())
/** Throws on malformed input. */
export const decodePingReply = (bytes: Buffer): PingReply => {
  const decoded = PingReplyType.decode(bytes) as unknown as { readonly sentAtMicros?: number }
  return { sentAtMicros: decoded.sentAtMicros ?? 0 }
}

/**
 * The server-side service definition. Requests are deserialised as raw bytes so the handlers
 * decide what a malformed request costs (a decode failure in grpc-js's own deserialiser would
 * end the call as INTERNAL, uncounted).
 */
export const raftTransportService = {
  Stream: {
    path: STREAM_PATH,
    originalName: "stream",
    requestStream: true,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: encodeAck,
    responseDeserialize: decodeAck
  },
  StreamAcked: {
    path: STREAM_ACKED_PATH,
    originalName: "streamAcked",
    requestStream: true,
    responseStream: true,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: encodeAck,
    responseDeserialize: decodeAck
  },
  Ping: {
    path: PING_PATH,
    originalName: "ping",
    requestStream: false,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: encodePingReply,
    responseDeserialize: decodePingReply
  }
} satisfies grpc.ServiceDefinition
