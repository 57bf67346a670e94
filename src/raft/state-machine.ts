import type { Entry } from "../message/types.ts"

/**
 * The replicated state machine (§2): every node applies the same committed entries in the same
 * order, so `apply` must be deterministic (no clocks, no randomness, no I/O that can differ
 * between nodes). It runs on the node's own fiber: keep it fast.
 *
 * `R` is what a proposal returns to its caller once its entry is applied.
 */
export interface StateMachine<R> {
  /** Applies one committed entry with data (no-op entries of new leaders are not passed in). */
  apply(entry: Entry): R
  /** The whole state, for a snapshot (§7). */
  snapshot(): Uint8Array
  /**
   * Replaces the whole state with a snapshot's: at start-up (with the stored snapshot, or an
   * empty array when there is none, meaning the empty state) and when a follower installs the
   * leader's snapshot.
   */
  restore(data: Uint8Array): void
  /**
   * Why `data` could not be restored, or `undefined` when `restore` would take it. A snapshot
   * received from a peer is checked with this before it is persisted: garbage stored as the
   * snapshot would stop the node at every start. It must not change the state.
   */
  validate(data: Uint8Array): string | undefined
}
