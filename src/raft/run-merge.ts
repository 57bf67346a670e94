/**
 * A k-way merge of sorted runs, taken a few items at a time: a binary min-heap of the runs
 * ordered by their next item's key. Sorting many items in one call holds the event loop for
 * the whole sort; sorting runs of a few thousand and merging them as they are consumed spreads
 * the same work over as many steps as the caller likes (`kv-state-machine.ts`).
 */
export class RunMerge<T> {
  /** Indexes of the runs with items left, as a heap on their next key. */
  private readonly heap: Array<number> = []
  /** Per run, the index of its next item. */
  private readonly at: Array<number>

  /** `runs` each sorted by `key` (keys compared with `<`, unique across the runs). */
  constructor(private readonly runs: ReadonlyArray<ReadonlyArray<T>>, private readonly key: (item: T) => string) {
    this.at = runs.map(() => 0)
    for (let r = 0; r < runs.length; r++) {
      if (runs[r]!.length === 0) continue
      this.heap.push(r)
      this.siftUp(this.heap.length - 1)
    }
  }

  /** Moves up to `n` of the smallest items left into `out`, in order. */
  take(n: number, out: Array<T>): void {
    const heap = this.heap
    for (let taken = 0; taken < n && heap.length > 0; taken++) {
      const r = heap[0]!
      const run = this.runs[r]!
      out.push(run[this.at[r]!]!)
      if (++this.at[r]! === run.length) {
        const last = heap.pop()!
        if (heap.length === 0) continue
        heap[0] = last
      }
      this.siftDown(0)
    }
  }

  private next(slot: number): string {
    const r = this.heap[slot]!
    return this.key(this.runs[r]![this.at[r]!]!)
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (this.next(parent) <= this.next(i)) return
      this.swap(i, parent)
      i = parent
    }
  }

  private siftDown(i: number): void {
    const length = this.heap.length
    while (true) {
      const left = 2 * i + 1
      let least = i
      if (left < length && this.next(left) < this.next(least)) least = left
      if (left + 1 < length && this.next(left + 1) < this.next(least)) least = left + 1
      if (least === i) return
      this.swap(i, least)
      i = least
    }
  }

  private swap(i: number, j: number): void {
    const heap = this.heap
    const t = heap[i]!
    heap[i] = heap[j]!
    heap[j] = t
  }
}
