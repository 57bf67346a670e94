/**
 * The node's view of its log: the latest snapshot's (index, term) followed by every entry
 * since, all in memory (compaction keeps this bounded), plus the commit and apply indexes.
 *
 * It also remembers the lowest index changed since the last `markStable()`, so the node knows
 * which suffix to hand to storage, and the last index known durable (`durable`): storage writes
 * complete after the node has moved on (they run off its loop), so what was handed to storage
 * and what is on disk differ while a write is in flight.
 */
import type { Entry } from "../message/types.ts"

export class RaftLog {
  private entries: Array<Entry>
  /** Lowest index appended or replaced and not yet persisted (lastIndex + 1 when none). */
  private unstableFrom: number
  committed: number
  applied: number
  /**
   * The last index whose entry (as this log holds it now) is on stable storage. A leader counts
   * itself in a quorum only up to here (thesis §10.2.1); nothing past it is applied.
   */
  durable: number

  constructor(
    private snapIndex: number,
    private snapTerm: number,
    entries: ReadonlyArray<Entry>,
    committed: number
  ) {
    this.entries = [...entries]
    this.unstableFrom = this.lastIndex() + 1
    this.durable = this.lastIndex()
    // The persisted commit is a hint; it can never exceed what the log holds.
    this.committed = Math.min(Math.max(committed, snapIndex), this.lastIndex())
    this.applied = snapIndex
  }

  get snapshotIndex(): number {
    return this.snapIndex
  }

  firstIndex(): number {
    return this.snapIndex + 1
  }

  lastIndex(): number {
    return this.snapIndex + this.entries.length
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** The term of entry `i`; `undefined` when compacted away or beyond the end. */
  term(i: number): number | undefined {
    if (i === this.snapIndex) return this.snapTerm
    if (i < this.snapIndex || i > this.lastIndex()) return undefined
    return this.entries[i - this.snapIndex - 1]!.term
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term
  }

  entry(i: number): Entry | undefined {
    return i <= this.snapIndex ? undefined : this.entries[i - this.snapIndex - 1]
  }

  /** Entries `[from, to]` (inclusive), at most `max` of them; `from` must not be compacted. */
  slice(from: number, to: number, max = Number.POSITIVE_INFINITY): ReadonlyArray<Entry> {
    const lo = Math.max(from, this.firstIndex())
    const hi = Math.min(to, this.lastIndex(), lo + max - 1)
    if (hi < lo) return []
    return this.entries.slice(lo - this.snapIndex - 1, hi - this.snapIndex)
  }

  /**
   * §5.4.1 election restriction: a log is at least as up-to-date as ours if its last term is
   * later, or the same with an index at least as large.
   */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm()
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex())
  }

  /** Leader: appends new entries at the end of the log. */
  append(entries: ReadonlyArray<Entry>): void {
    if (entries.length === 0) return
    if (entries[0]!.index !== this.lastIndex() + 1) {
      throw new Error(`append at ${entries[0]!.index} does not follow the last index ${this.lastIndex()}`)
    }
    this.unstableFrom = Math.min(this.unstableFrom, entries[0]!.index)
    this.entries.push(...entries)
  }

  /**
   * Follower side of AppendEntries (§5.3). Returns the index of the last new entry when the
   * log holds `prevIndex` with `prevTerm` (log matching), `undefined` otherwise.
   *
   * Only a real conflict (same index, different term) removes entries, and then everything
   * from it on: an outdated or repeated append whose entries all match must not truncate
   * entries that came after it.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: ReadonlyArray<Entry>): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined
    const lastNew = prevIndex + entries.length
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!
      const mine = this.term(e.index)
      if (mine === e.term) continue
      if (mine !== undefined) {
        // Committed entries are the same on every log (Leader Completeness, §5.4.3): a
        // conflict below the commit index means the safety argument no longer holds.
        if (e.index <= this.committed) {
          throw new Error(`conflict at committed index ${e.index} (committed ${this.committed})`)
        }
        this.entries.length = e.index - this.snapIndex - 1
        // A write in flight may still land the replaced entries: they count for nothing.
        this.durable = Math.min(this.durable, e.index - 1)
      }
      this.unstableFrom = Math.min(this.unstableFrom, e.index)
      this.entries.push(...entries.slice(k))
      break
    }
    return lastNew
  }

  /**
   * Reject hint for a failed AppendEntries (the optimisation of §5.3 as etcd does it): the
   * largest index `j <= index` whose term is at most `term`. Every entry of ours after `j` has
   * a later term than the leader's entry at `index`, so cannot match the leader's log there.
   */
  findConflictByTerm(index: number, term: number): number {
    let j = Math.min(index, this.lastIndex())
    while (j > this.snapIndex) {
      const t = this.term(j)
      if (t !== undefined && t <= term) break
      j--
    }
    return j
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false
    if (index > this.lastIndex()) throw new Error(`commit ${index} beyond the last index ${this.lastIndex()}`)
    this.committed = index
    return true
  }

  appliedTo(index: number): void {
    if (index < this.applied || index > this.committed) {
      throw new Error(`applied ${index} outside [${this.applied}, ${this.committed}]`)
    }
    this.applied = index
  }

  /** Our own snapshot at `index` (applied): the entries it covers go (§7). */
  compact(index: number, term: number): void {
    if (index <= this.snapIndex) return
    if (index > this.applied) throw new Error(`compact ${index} beyond applied ${this.applied}`)
    this.entries = this.entries.slice(index - this.snapIndex)
    this.snapIndex = index
    this.snapTerm = term
  }

  /**
   * Installs a leader's snapshot (§7) in place of the whole log. Only for a log that does not
   * hold the snapshot's last entry: one that does keeps its entries and just commits (see
   * `RaftCore.handleSnapshot`). Everything up to the snapshot is committed and, once the state
   * machine is restored, applied.
   */
  restore(index: number, term: number): void {
    this.entries = []
    this.snapIndex = index
    this.snapTerm = term
    this.committed = Math.max(this.committed, index)
    this.applied = index
    this.unstableFrom = index + 1
    this.durable = Math.min(this.durable, index)
  }

  /**
   * A storage write that held the log up to `index`, whose entry had `term`, completed. If that
   * entry was replaced meanwhile (another term at `index`, or gone), the write proves nothing:
   * a later write carries the replacement (etcd raft's `stableTo` rule).
   */
  stableTo(index: number, term: number): void {
    if (index > this.durable && index <= this.lastIndex() && this.term(index) === term) this.durable = index
  }

  /** Entries to persist before acting on them. */
  unstableEntries(): ReadonlyArray<Entry> {
    return this.slice(this.unstableFrom, this.lastIndex())
  }

  markStable(): void {
    this.unstableFrom = this.lastIndex() + 1
  }
}
