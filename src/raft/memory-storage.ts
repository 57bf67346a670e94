import { Effect } from "effect"
import type { Entry } from "../message/types.ts"
import {
  emptyHardState,
  entriesAfterSnapshot,
  type HardState,
  type PersistedState,
  type RaftStorage,
  type SnapshotRecord,
  type WriteBatch
} from "./storage.ts"

/**
 * Storage in process memory: used when `data_dir` is absent, and by tests (one instance can
 * outlive a node to simulate a restart with an intact disk). Same semantics as `FileStorage`.
 */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState = emptyHardState
  private snapshot: SnapshotRecord | undefined = undefined
  private entries: Array<Entry> = []

  readonly load: Effect.Effect<PersistedState> = Effect.sync(() => ({
    hardState: this.hardState,
    snapshot: this.snapshot,
    entries: [...this.entries]
  }))

  write(batch: WriteBatch): Effect.Effect<void> {
    return Effect.sync(() => this.writeUnsafe(batch))
  }

  readonly close: Effect.Effect<void> = Effect.void

  /** What is stored now, for assertions. */
  contents(): PersistedState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] }
  }

  private writeUnsafe(batch: WriteBatch): void {
    if (batch.snapshot !== undefined) {
      this.snapshot = batch.snapshot
      this.entries = [...entriesAfterSnapshot(this.entries, batch.snapshot.metadata)]
    }
    const entries = batch.entries ?? []
    const first = entries[0]
    if (first !== undefined) {
      const base = this.entries[0]?.index ?? first.index
      const keep = Math.max(0, first.index - base)
      if (keep > this.entries.length) {
        throw new Error(`log gap: appending index ${first.index} after ${base + this.entries.length - 1}`)
      }
      this.entries.length = keep
      this.entries.push(...entries)
    }
    if (batch.hardState !== undefined) this.hardState = batch.hardState
  }
}

/** Storage in memory: for tests, and nodes that rebuild from their peers after a restart. */
export const makeMemoryStorage = (): MemoryStorage => new MemoryStorage()
