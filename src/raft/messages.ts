/**
 * Small helpers for message fields as the transport delivers them. A decoded protobuf message
 * carries its defaults on the prototype: an absent `bytes` field reads as an empty (frozen)
 * array, an absent message field as `null`.
 */

type BytesLike = Uint8Array | ArrayLike<number> | null | undefined

/** `undefined` for absent or empty bytes; the bytes as a `Uint8Array` otherwise. */
export const nonEmptyBytes = (bytes: BytesLike): Uint8Array | undefined =>
  bytes === null || bytes === undefined || bytes.length === 0
    ? undefined
    : bytes instanceof Uint8Array
    ? bytes
    : Uint8Array.from(bytes)

/** A request id (entry / heartbeat context) as a map key; "" for none. */
export const contextKey = (bytes: BytesLike): string => {
  const b = nonEmptyBytes(bytes)
  return b === undefined ? "" : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")
}

/**
 * Context of a RequestVote sent on the leader's request (MsgTimeoutNow): it bypasses the leader
 * lease check, as etcd's `campaignTransfer` does (thesis §3.10).
 */
export const TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode("raft/transfer-leader")

/** `TRANSFER_CONTEXT` as a key, computed once: every vote request with a newer term is checked. */
export const TRANSFER_KEY: string = contextKey(TRANSFER_CONTEXT)
