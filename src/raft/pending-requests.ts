/**
 * The requests a Raft node has taken and not yet answered: proposals (appended here as leader,
 * or forwarded to the leader) and reads waiting for their read index. The node decides what
 * happens to them; this holds them and settles each exactly once.
 */
import { Deferred, Exit } from "effect"
import type { NodeId } from "../message/types.ts"
import type { NoQuorum, NotLeader, ProposalDropped } from "./errors.ts"

/** How a proposal can fail: no leader, no commit in time, or known lost. */
export type ProposeError = NotLeader | NoQuorum | ProposalDropped
/** How a linearizable read can fail: no leader, or no quorum confirmed it in time. */
export type ReadError = NotLeader | NoQuorum

export interface PendingProposal<R> {
  readonly deferred: Deferred.Deferred<R, ProposeError>
  readonly deadline: number
  readonly timeoutMs: number
  /** Set when appended by this node as leader: another entry at this index means it was lost. */
  readonly index: number | undefined
  /** Set while forwarded: to whom, and what to send on if that node refuses it. */
  readonly forwarded?: { readonly to: NodeId; readonly data: Uint8Array; readonly context: Uint8Array; readonly hops: number }
}

export interface PendingRead {
  readonly deadline: number
  readonly timeoutMs: number
  /** The request id, sent again when the read is asked of a new leader. */
  readonly context: Uint8Array
  /** Who was asked for the read index: this node as leader, else the leader it believed in. */
  askedOf: NodeId | undefined
  index: number | undefined
  readonly run: () => void
  readonly fail: (error: ReadError) => void
}

export class PendingRequests<R> {
  /** By request key (`contextKey` of the entry's context). */
  readonly proposals = new Map<string, PendingProposal<R>>()
  /** Log index -> request key, for proposals this node appended as leader. */
  readonly proposalAt = new Map<number, string>()
  readonly reads = new Map<string, PendingRead>()

  addProposal(key: string, proposal: PendingProposal<R>): void {
    this.proposals.set(key, proposal)
    if (proposal.index !== undefined) this.proposalAt.set(proposal.index, key)
  }

  settleProposal(key: string, exit: Exit.Exit<R, ProposeError>): void {
    const p = this.proposals.get(key)
    if (p === undefined) return
    this.proposals.delete(key)
    if (p.index !== undefined) this.proposalAt.delete(p.index)
    Deferred.doneUnsafe(p.deferred, exit)
  }

  failProposal(key: string, error: ProposeError): void {
    this.settleProposal(key, Exit.fail(error))
  }

  failRead(key: string, error: ReadError): void {
    const r = this.reads.get(key)
    if (r === undefined) return
    this.reads.delete(key)
    r.fail(error)
  }

  /** Every request fails: the node stops, or can no longer answer any of them. */
  failAll(dropped: () => ProposalDropped, notLeader: () => NotLeader): void {
    for (const key of this.proposals.keys()) this.failProposal(key, dropped())
    for (const key of this.reads.keys()) this.failRead(key, notLeader())
  }

  /** Requests past their deadline fail with `NoQuorum`: the caller never waits forever. */
  expire(now: number, noQuorum: (operation: "propose" | "read", timeoutMs: number) => NoQuorum): void {
    for (const [key, p] of this.proposals) {
      if (p.deadline <= now) this.failProposal(key, noQuorum("propose", p.timeoutMs))
    }
    for (const [key, r] of this.reads) {
      if (r.deadline <= now) this.failRead(key, noQuorum("read", r.timeoutMs))
    }
  }
}
