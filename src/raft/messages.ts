/** Small helpers for message fields as the transport delivers them (protobuf defaults included). */

/** `undefined` for absent, null (protobuf default) or empty bytes. */
export const nonEmptyBytes = (bytes: Uint8Array | null | undefined): Uint8Array | undefined =>
  bytes === null || bytes === undefined || bytes.length === 0 ? undefined : bytes

/** A request id (entry / heartbeat context) as a map key. */
export const contextKey = (bytes: Uint8Array | null | undefined): string =>
  bytes === null || bytes === undefined ? "" : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

/**
 * Context of a RequestVote sent on the leader's request (MsgTimeoutNow): it bypasses the leader
 * lease check, as etcd's `campaignTransfer` does (thesis §3.10).
 */
export const TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode("raft/transfer-leader")
