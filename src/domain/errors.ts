import { Data } from "effect"
import type { ClassName } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"

/** The transport a link runs on; `memory` is the in-process link of `raft-transport/testing`. */
export type TransportKind = "iroh" | "grpc" | "memory"

/** `send` named a node that is not in the peer table. */
export class PeerUnknown extends Data.TaggedError("PeerUnknown")<{ readonly peer: NodeId }> {
  override get message() {
    return `peer ${this.peer} is not in the peer table`
  }
}

/** Why a message was not delivered: the `reason` of `MessageDropped` and of `raft_transport_messages_dropped_total`. */
export type DropReason =
  | "queue_full"
  | "expired"
  | "link_failed"
  | "forged_from"
  | "misaddressed"
  | "wrong_class"
  | "peer_removed"
  | "snapshot_failed"
  /** Inbound: a peer's partial transfer, dropped when it started another. */
  | "snapshot_replaced"
  /** Inbound: a partial transfer with no data for `idle_timeout_ms`, evicted when memory was needed. */
  | "snapshot_stalled"
  /** Inbound: a transfer whose next chunk did not fit in `max_snapshot_receive_bytes`. */
  | "snapshot_memory"
  | "too_large"
  | "transport_disabled"

/** A message the transport did not deliver, and why. Returned by `send` and counted. */
export class MessageDropped extends Data.TaggedError("MessageDropped")<{
  readonly peer: NodeId
  readonly class: ClassName
  readonly reason: DropReason
}> {
  override get message() {
    return `message to peer ${this.peer} (${this.class}) dropped: ${this.reason}`
  }
}

/** Dialling a peer failed. */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly peer: NodeId
  readonly transport: TransportKind
  readonly cause: unknown
}> {
  override get message() {
    return `connect to peer ${this.peer} over ${this.transport} failed: ${describeCause(this.cause)}`
  }
}

/** Opening or writing a class stream on an established link failed: the link is lost. */
export class StreamFailed extends Data.TaggedError("StreamFailed")<{
  readonly peer: NodeId
  readonly transport: TransportKind
  readonly class: ClassName
  readonly cause: unknown
}> {
  override get message() {
    return `${this.class} stream to peer ${this.peer} over ${this.transport} failed: ${describeCause(this.cause)}`
  }
}

/** The transport could not bind or start. */
export class TransportStartFailed extends Data.TaggedError("TransportStartFailed")<{
  readonly transport: TransportKind | "metrics"
  readonly cause: unknown
}> {
  override get message() {
    return `${this.transport} transport failed to start: ${describeCause(this.cause)}`
  }
}

export const describeCause = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (typeof cause === "string") return cause
  try {
    // `undefined`, functions and symbols have no JSON form; cyclic objects throw.
    return JSON.stringify(cause) ?? String(cause)
  } catch {
    return String(cause)
  }
}
