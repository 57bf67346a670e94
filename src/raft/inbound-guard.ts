/**
 * What a Raft node takes from the transport. The transport vouches for who sent a message (the
 * sender is in its peer table and authenticated), not for whether that sender belongs to this
 * Raft group: any peer in the table can reach the node, voter or not. So before a message is
 * stepped:
 *
 * - one from a node that is not a voter is ignored: it must not win this node's vote, be
 *   followed as leader, or replace the state with its snapshot (Raft only ever hears from the
 *   members of its configuration);
 * - a snapshot is checked by the state machine (`StateMachine.validate`): one it could not
 *   restore is refused here, before the node persists it, or the node would fail to start from
 *   it at every restart. The sender is not answered: a leader sends it again after
 *   `snapshot_timeout_ms`, and the follower stays behind meanwhile.
 *
 * Both are counted in `raft_node_messages_refused_total{reason}` and logged at most once per
 * reason per `REFUSAL_LOG_INTERVAL_MS`.
 */
import { Effect, Metric } from "effect"
import { MessageType, messageTypeName, type RaftMessage } from "../message/types.ts"
import { makeRefusalLog } from "../metrics/refusal-log.ts"
import type { Membership } from "./membership.ts"

export type InboundRefusal = "not_member" | "bad_snapshot"

const REFUSAL_LOG_INTERVAL_MS = 10_000
const EMPTY = new Uint8Array(0)

export const messagesRefused = Metric.counter("raft_node_messages_refused_total", {
  description: "Raft messages the node ignored, by reason (not_member: the sender is not a voter; " +
    "bad_snapshot: the state machine cannot restore the snapshot)"
})

/** Why `m` must not be stepped, with the line to log; `undefined` when it may. */
const check = (
  m: RaftMessage,
  membership: Membership,
  validate: (data: Uint8Array) => string | undefined
): { readonly reason: InboundRefusal; readonly detail: string } | undefined => {
  if (!membership.isVoter(m.from)) {
    return {
      reason: "not_member",
      detail: `ignored ${messageTypeName(m.msgType)} (term ${m.term ?? 0}) from node ${m.from}: not a voter ` +
        `(voters ${membership.voters.join(",")})`
    }
  }
  if (m.msgType === MessageType.Snapshot && m.snapshot !== undefined && m.snapshot !== null) {
    // Absent data is the empty state, as `snapshotRecordOf` reads it.
    const problem = validate((m.snapshot.data as Uint8Array | undefined) ?? EMPTY)
    if (problem !== undefined) {
      return {
        reason: "bad_snapshot",
        detail: `refused snapshot ${m.snapshot.metadata?.index ?? 0} (term ${m.snapshot.metadata?.term ?? 0}) ` +
          `from node ${m.from}, not persisted: ${problem}`
      }
    }
  }
  return undefined
}

/**
 * The messages of a received batch the node may step, in order; the rest are counted and
 * logged. A batch with nothing to refuse is returned as it is.
 */
export const makeInboundGuard = (
  membership: Membership,
  validate: (data: Uint8Array) => string | undefined
): (messages: ReadonlyArray<RaftMessage>) => Effect.Effect<ReadonlyArray<RaftMessage>> => {
  const refusals = makeRefusalLog<InboundRefusal>({ counter: messagesRefused, intervalMs: REFUSAL_LOG_INTERVAL_MS })
  return (messages) =>
    Effect.suspend(() => {
      let admitted: Array<RaftMessage> | undefined
      let refused: Array<{ readonly reason: InboundRefusal; readonly detail: string }> | undefined
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i]!
        const refusal = check(m, membership, validate)
        if (refusal === undefined) {
          admitted?.push(m)
          continue
        }
        admitted ??= messages.slice(0, i)
        ;(refused ??= []).push(refusal)
      }
      if (refused === undefined) return Effect.succeed(messages)
      return Effect.as(Effect.forEach(refused, (r) => refusals.refuse(r.reason, r.detail), { discard: true }), admitted ?? [])
    })
}
