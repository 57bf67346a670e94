import { Effect } from "effect"
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
   * Optional: the state as of now, encoded in slices later. The node calls it on its own fiber
   * and then takes the slices over several event-loop turns while it goes on applying, so
   * encoding a large state never holds the node up: the call itself must be cheap and must
   * copy or freeze whatever the slices read. The slices joined must be what `snapshot()`
   * would have returned at the time of the call. Without it, `snapshot()` runs in one go.
   */
  captureSnapshot?(): SnapshotCapture
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

/** A state captured by `StateMachine.captureSnapshot`, encoded a slice at a time. */
export interface SnapshotCapture {
  /** The next slice of the snapshot's bytes, or `undefined` once all have been returned. */
  next(): Uint8Array | undefined
}

/** Bytes of a snapshot's slices joined between two steps. */
const JOIN_PER_STEP = 1 << 20

/**
 * Every slice of `capture` that is left, in one array, in steps (each `yield`): one per slice,
 * and one per megabyte joined, since the first touch of fresh memory is what the join costs.
 */
function* encodeSteps(capture: SnapshotCapture): Generator<void, Uint8Array> {
  const slices: Array<Uint8Array> = []
  let length = 0
  for (let slice = capture.next(); slice !== undefined; slice = capture.next()) {
    slices.push(slice)
    length += slice.length
    yield
  }
  if (slices.length === 1) return slices[0]!
  const out = new Uint8Array(length)
  let at = 0
  let sinceStep = 0
  for (const slice of slices) {
    out.set(slice, at)
    at += slice.length
    sinceStep += slice.length
    if (sinceStep >= JOIN_PER_STEP) {
      sinceStep = 0
      yield
    }
  }
  return out
}

/** Every slice of `capture` that is left, in one array, in one go. */
export const joinSlices = (capture: SnapshotCapture): Uint8Array => {
  const steps = encodeSteps(capture)
  let step = steps.next()
  while (step.done !== true) step = steps.next()
  return step.value
}

/**
 * Every slice of `capture`, in one array, yielding to other fibers between steps, so that a
 * large snapshot never holds the loop for its whole encoding or join.
 */
export const encodeCapture = (capture: SnapshotCapture): Effect.Effect<Uint8Array> =>
  Effect.gen(function*() {
    const steps = encodeSteps(capture)
    let step = steps.next()
    while (step.done !== true) {
      yield* Effect.yieldNow
      step = steps.next()
    }
    return step.value
  })
