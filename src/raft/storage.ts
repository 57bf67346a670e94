/**
 * What a Raft node keeps on stable storage (§5, Figure 2 "persistent state on all servers"):
 * the hard state (currentTerm, votedFor, and commitIndex as a hint), the log, and the latest
 * snapshot that replaced the log's prefix (§7).
 *
 * The node writes one `WriteBatch` at a time (`write-pipeline.ts`) and holds back every message
 * that depends on it (a vote, an append acknowledgement) until it is durable: that is the
 * "respond only after persisting" rule of Figure 2.
 */
import type { Effect } from "effect"
import type { Entry, NodeId, SnapshotMetadata } from "../message/types.ts"
import type { StorageError } from "./errors.ts"

/** What Raft must persist before answering (§5.2): term, vote, and the commit index. */
export interface HardState {
  readonly term: number
  /** The candidate voted for in `term`; 0 = none. */
  readonly vote: NodeId
  /** A lower bound of the commit index: it may lag (it is re-learnt from the leader). */
  readonly commit: number
}

/** The hard state of a node that never ran. */
export const emptyHardState: HardState = { term: 0, vote: 0, commit: 0 }

/** A snapshot of the state machine at `metadata.index` (term `metadata.term`). */
export interface SnapshotRecord {
  readonly metadata: SnapshotMetadata
  readonly data: Uint8Array
}

/** Everything a node reads back at start-up. */
export interface PersistedState {
  readonly hardState: HardState
  readonly snapshot: SnapshotRecord | undefined
  /** Contiguous entries following the snapshot (or starting at index 1 without one). */
  readonly entries: ReadonlyArray<Entry>
}

/** One batch of changes, applied in field order: snapshot, entries, hard state. */
export interface WriteBatch {
  /**
   * A new snapshot: entries up to its index are discarded. Entries after it are kept only if
   * the log holds the snapshot's last entry with the same term (§7: "If the follower receives
   * a snapshot that describes a prefix of its log, log entries covered by the snapshot are
   * deleted but entries following the snapshot are still valid and must be retained");
   * otherwise the whole log is discarded.
   */
  readonly snapshot?: SnapshotRecord
  /**
   * Entries to append. The first one's index may be at or below the last stored index: the
   * stored suffix from that index on conflicts with the leader's log and is replaced (§5.3).
   */
  readonly entries?: ReadonlyArray<Entry>
  readonly hardState?: HardState
}

/** What the node tells a storage about a write (`RaftStorage.write`). */
export interface WriteOptions {
  /**
   * True when the round that staged this write sent nothing, so nothing the node has to do waits
   * on its loop meanwhile (a follower's round, whose answer is held until the write is durable):
   * a storage may then hold the event loop for the write rather than hand it to another thread.
   * False or absent: messages of the round (a leader's appends) are still being written to the
   * network by the loop, and a write holding the loop would go before them.
   */
  readonly mayHoldLoop?: boolean
}

/** Where a Raft node persists its hard state, log and snapshot: `MemoryStorage`, `FileStorage`, or your own. */
export interface RaftStorage {
  /** Everything persisted, read once when the node starts. */
  readonly load: Effect.Effect<PersistedState, StorageError>
  /**
   * Makes the batch durable (per the sync policy) before it completes. The node never has two
   * writes running: an implementation may do the I/O off the event loop.
   */
  readonly write: (batch: WriteBatch, options?: WriteOptions) => Effect.Effect<void, StorageError>
  /**
   * Optional: makes `record` durable beside the current snapshot without making it current,
   * off the node's loop. A later `write` whose `snapshot` is this same record only moves it
   * into place. The node stages one snapshot at a time, and goes on writing meanwhile; a
   * snapshot written by `write` in between (one installed from the leader) is not affected.
   */
  readonly stageSnapshot?: (record: SnapshotRecord) => Effect.Effect<void, StorageError>
  /** Releases files; the storage is unusable afterwards. */
  readonly close: Effect.Effect<void>
  /** Where the snapshot is kept (a file path), for error messages; absent for memory. */
  readonly snapshotLocation?: string
}

/** The entries a log keeps when `snapshot` is installed over it (see `WriteBatch.snapshot`). */
export const entriesAfterSnapshot = (
  entries: ReadonlyArray<Entry>,
  snapshot: SnapshotMetadata
): ReadonlyArray<Entry> => {
  const first = entries[0]
  if (first === undefined) return []
  // Already compacted to this snapshot (it is being saved again): the log follows it.
  if (first.index === snapshot.index + 1) return entries
  const at = snapshot.index - first.index
  if (at < 0 || at >= entries.length || entries[at]!.term !== snapshot.term) return []
  return entries.slice(at + 1)
}
