/**
 * When this node last sent or received an election-class message (vote, pre-vote, their
 * responses, TimeoutNow), so that snapshot writers can step aside while an election is under
 * way: on a machine whose cores a snapshot keeps busy, every byte it moves delays the votes
 * that decide the election (docs/design.md, "Snapshots step aside during elections").
 */
export class ElectionActivity {
  private lastAt = Number.NEGATIVE_INFINITY

  /** `windowMs`: how long after the last election message the election counts as under way. */
  constructor(readonly windowMs: number) {}

  noteAt(nowMs: number): void {
    this.lastAt = nowMs
  }

  underWayAt(nowMs: number): boolean {
    return nowMs - this.lastAt < this.windowMs
  }
}
