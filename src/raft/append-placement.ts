/**
 * Where the next log append runs: in line, on the event loop, or on libuv's thread pool.
 *
 * On the pool, an append costs two hand-offs between threads (the loop wakes a pool thread, the
 * pool thread wakes the loop), and on an idle machine each wakes a sleeping CPU. At one client
 * every member makes one append per write, so those wake-ups are a share of every write's CPU.
 * In line, the append holds the loop for as long as the disk takes (an `O_DSYNC` write of a
 * few hundred bytes: a fraction of a millisecond on a healthy disk). So an append goes in line
 * while the last one was quick, and to the pool once one was slow (a loaded or stalled disk),
 * until an append there is quick again: a slow disk then holds no more than the one append
 * that showed it, and heartbeats, reads and client answers go on beside the rest.
 */
export interface AppendPlacementOptions {
  /** Appends larger than this go to the pool (a snapshot's rewrite, a follower catching up). */
  readonly inlineMaxBytes: number
  /** An append that took longer than this, from submission to durable, sends the next to the pool. */
  readonly slowMs: number
}

export const APPEND_PLACEMENT: AppendPlacementOptions = { inlineMaxBytes: 64 * 1024, slowMs: 2 }

export type Placement = "inline" | "pool"

export class AppendPlacement {
  private slow = false

  constructor(private readonly options: AppendPlacementOptions = APPEND_PLACEMENT) {}

  /** Where an append of `bytes` runs now. */
  of(bytes: number): Placement {
    return !this.slow && bytes <= this.options.inlineMaxBytes ? "inline" : "pool"
  }

  /** Reports how long an append took; true when that changed where the next one runs. */
  took(ms: number): boolean {
    const slow = ms > this.options.slowMs
    const changed = slow !== this.slow
    this.slow = slow
    return changed
  }
}
