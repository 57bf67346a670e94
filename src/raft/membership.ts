/**
 * Who votes. Membership is static (`voters` in the config); everything that depends on it goes
 * through this class, the seam for joint-consensus membership changes (§6) later: a change
 * would swap in a `Membership` with two voter sets and "majority of each" rules.
 */
import type { ConfState, NodeId } from "../message/types.ts"

export class Membership {
  readonly voters: ReadonlyArray<NodeId>
  private readonly set: ReadonlySet<NodeId>

  constructor(voters: ReadonlyArray<NodeId>) {
    this.voters = [...voters].sort((a, b) => a - b)
    this.set = new Set(voters)
  }

  isVoter(id: NodeId): boolean {
    return this.set.has(id)
  }

  /** Votes (or acknowledgements) needed: a strict majority of the voters. */
  get quorum(): number {
    return Math.floor(this.voters.length / 2) + 1
  }

  hasQuorum(ids: ReadonlySet<NodeId> | ReadonlyArray<NodeId>): boolean {
    let count = 0
    for (const id of ids) if (this.set.has(id)) count++
    return count >= this.quorum
  }

  /** The highest index stored on a majority, given each voter's match index. */
  committedIndex(matchOf: (id: NodeId) => number): number {
    const matches = this.voters.map(matchOf).sort((a, b) => b - a)
    return matches[this.quorum - 1] ?? 0
  }

  confState(): ConfState {
    return { voters: this.voters, learners: [] }
  }
}
