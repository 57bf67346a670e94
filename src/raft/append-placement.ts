/**
 * Where the next log append runs: in line, on the event loop, or on libuv's thread pool.
 *
 * On the pool, an append costs two hand-offs between threads (the loop wakes a pool thread, the
 * pool thread wakes the loop), and on an idle machine each wakes a sleeping CPU. In line, the
 * append holds the loop for as long as the disk takes (an `O_DSYNC` write of a few hundred
 * bytes: a fraction of a millisecond on a healthy disk), which costs nothing only when nothing
 * else waits on the loop: a follower's append, whose answer waits for it anyway. A leader's
 * append runs beside its appends to the followers, whose bytes the loop is still writing to the
 * network (a gRPC write is flushed by HTTP/2 in a later turn); held in line, the leader's own
 * write would go first. So an append goes in line when the node says it may hold the loop
 * (`WriteOptions.mayHoldLoop`), it is small, and the last one was quick; to the pool otherwise,
 * and after a slow one (a loaded or stalled disk) until an append there is quick again: a slow
 * disk then holds no more than the one append that showed it.
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

  /** Where an append of `bytes` runs now; `mayHoldLoop`: the node allows it in line. */
  of(bytes: number, mayHoldLoop: boolean): Placement {
    return mayHoldLoop && !this.slow && bytes <= this.options.inlineMaxBytes ? "inline" : "pool"
  }

  /** True while the last append was slow: every append goes to the pool. */
  get slowDisk(): boolean {
    return this.slow
  }

  /** Reports how long an append took; true when that changed where the next one runs. */
  took(ms: number): boolean {
    const slow = ms > this.options.slowMs
    const changed = slow !== this.slow
    this.slow = slow
    return changed
  }
}
