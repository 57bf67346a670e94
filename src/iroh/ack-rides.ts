import type { ReceiptPump, ReceiptRide } from "../inbound/inbound-receipts.ts"
import { MAX_BLOCK_EXTENSION_BYTES } from "../message/blocks.ts"
import type { NodeId } from "../message/types.ts"
import type { PriorityClass } from "../message/priority.ts"
import { encodeRiddenAcks, RIDE_RECORD_BYTES, type RiddenAck } from "./ack-stream.ts"

/**
 * How long an acknowledgement waits for a block to ride on before it is written on its own. A
 * follower answers an append once its log write is durable (0.6 ms at p50 here, a few ms at
 * p99), and a loaded leader writes to each follower every millisecond or two, so nearly all ride;
 * an idle leader's answer to a heartbeat answer waits the full time, then goes alone. The wait
 * adds to the window in which a delivered message whose connection then fails is counted lost
 * (docs/design.md, "What stays inexact").
 */
export const ACK_RIDE_WAIT_MS = 5

/**
 * How long the count of messages that make the application write nothing back (a leader's
 * heartbeat answers, `leadsToNoWrite`) waits for a block to ride on. Such a count has no answer
 * to ride on, but an idle leader writes to each follower every heartbeat (100 ms by default), so
 * it rides on the next heartbeat instead of taking a packet of its own each way (the write and
 * the peer's QUIC acknowledgement of it). Longer than the heartbeat period, so it does not just
 * miss one; with a longer period the count goes on its own after this wait, as it would at once.
 */
export const QUIET_ACK_RIDE_WAIT_MS = 150

/** Acknowledgement records one block's extension holds. */
const RECORDS_PER_BLOCK = Math.floor(MAX_BLOCK_EXTENSION_BYTES / RIDE_RECORD_BYTES)

/**
 * Acknowledgements that ride on the reverse direction's traffic (wire version 3). Two nodes
 * each dial the other, so a follower takes appends on the connection its leader dialled and
 * answers on the one it dialled itself. Its acknowledgement of the appends rides in the header
 * of the answer's block instead of taking a write of its own on the first connection: on Iroh
 * each write is a binding call, and half of a loaded cluster's writes were acknowledgements.
 *
 * Both ends of that meet here, per node:
 * - outgoing, the receipt pumps of accepted connections offer their counts (`ride`), and the
 *   node's outbound version 3 sessions to the same peer take them into their next block
 *   (`carry`); what no block took within `waitMs` goes on the acknowledgement stream as before;
 * - incoming, the ledgers of this node's outbound sessions are found by peer and session id
 *   (`addSession`), for the acknowledgements the acceptor reads in blocks (`acknowledge`).
 *
 * A session id is a random `u64` the dialler puts after each class stream's preamble: a peer can
 * name only its own sessions (records are looked up under the peer that sent the block), and
 * counts for a connection that is gone never land on the one that replaced it.
 */
export class AckRides {
  /** Pumps waiting for a ride, with the session they count for, by peer. */
  private readonly waiting = new Map<NodeId, Map<ReceiptPump, bigint>>()
  /** Outbound sessions to each peer that carry acknowledgements. */
  private readonly carriers = new Map<NodeId, number>()
  private readonly sessions = new Map<NodeId, Map<bigint, (cls: PriorityClass, cumulative: number) => void>>()

  /**
   * `waitMs`: how long acknowledgements wait for a ride before they are written on their own;
   * `quietWaitMs`: the same for the counts of messages that make the application write nothing
   * back (`QUIET_ACK_RIDE_WAIT_MS`).
   */
  constructor(readonly waitMs: number, readonly quietWaitMs: number = QUIET_ACK_RIDE_WAIT_MS) {}

  /** The ride of the receipts of one accepted connection; `session` is undefined until its dialler named it. */
  ride(peer: NodeId, session: () => bigint | undefined): ReceiptRide {
    return {
      waitMs: (quiet) => {
        if (session() === undefined || (this.carriers.get(peer) ?? 0) === 0) return 0
        return quiet ? this.quietWaitMs : this.waitMs
      },
      offer: (pump) => {
        const id = session()
        if (id === undefined) return
        let pumps = this.waiting.get(peer)
        if (pumps === undefined) this.waiting.set(peer, pumps = new Map())
        pumps.set(pump, id)
      },
      withdraw: (pump) => {
        const pumps = this.waiting.get(peer)
        pumps?.delete(pump)
        if (pumps?.size === 0) this.waiting.delete(peer)
      }
    }
  }

  /** An outbound session to `peer` that carries from now until the returned function is called. */
  addCarrier(peer: NodeId): () => void {
    this.carriers.set(peer, (this.carriers.get(peer) ?? 0) + 1)
    return () => {
      const n = (this.carriers.get(peer) ?? 1) - 1
      if (n === 0) this.carriers.delete(peer)
      else this.carriers.set(peer, n)
    }
  }

  /**
   * The extension for a block about to be written to `peer`: the counts waiting for a ride, as
   * many as one block holds (the rest wait for the next), or undefined when none wait.
   */
  carry(peer: NodeId): Uint8Array | undefined {
    const pumps = this.waiting.get(peer)
    if (pumps === undefined) return undefined
    const acks: Array<RiddenAck> = []
    for (const [pump, session] of pumps) {
      const room = RECORDS_PER_BLOCK - acks.length
      if (room === 0) break
      for (const count of pump.take(room)) acks.push({ session, ...count })
    }
    return acks.length === 0 ? undefined : encodeRiddenAcks(acks)
  }

  /**
   * Where the acknowledgements of the outbound session named `session` go (its ledger), until the
   * returned function is called.
   */
  addSession(peer: NodeId, session: bigint, ack: (cls: PriorityClass, cumulative: number) => void): () => void {
    let sessions = this.sessions.get(peer)
    if (sessions === undefined) this.sessions.set(peer, sessions = new Map())
    sessions.set(session, ack)
    return () => {
      const current = this.sessions.get(peer)
      current?.delete(session)
      if (current?.size === 0) this.sessions.delete(peer)
    }
  }

  /**
   * Acknowledgements `peer` sent in a block. Those of a session that has ended are dropped: its
   * ledger counted what it had not heard of when it closed.
   */
  acknowledge(peer: NodeId, acks: ReadonlyArray<RiddenAck>): void {
    const sessions = this.sessions.get(peer)
    if (sessions === undefined) return
    for (const { session, cls, cumulative } of acks) sessions.get(session)?.(cls, cumulative)
  }
}
