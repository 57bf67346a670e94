/**
 * Raft storage in a directory:
 *
 * - `hardstate.json`: `{ term, vote, commit }`, replaced atomically (write temp, fsync, rename,
 *   fsync directory), so a crash leaves the old or the new state, never a mix.
 * - `log`: an append-only file of length-prefixed, checksummed protobuf `raft.Entry` records
 *   (`records.ts`). A conflicting suffix (§5.3) is cut off with `ftruncate` before the new
 *   entries are appended; compaction after a snapshot rewrites the retained suffix to a new
 *   file and renames it over the old one.
 * - `snapshot`: one record holding a protobuf `raft.Snapshot` (metadata + data), replaced
 *   atomically.
 *
 * Recovery on open: a torn last log record (a crash during an append that was therefore never
 * acknowledged), or a tail of zeros (a power loss that kept the new file size but not the data),
 * is discarded and the file truncated to the last whole record; damage in the
 * middle of the log is an error, not something to guess about. Entries the snapshot covers
 * (a crash between saving a snapshot and compacting) are dropped.
 *
 * The commit index is written with every term/vote change and every snapshot, not on every
 * advance: it is only a hint (a restarted node re-learns it from the leader), and writing it
 * each time would cost a rename and two fsyncs per batch.
 *
 * Appending entries, the write of every round, runs on libuv's thread pool, so the event loop
 * goes on reading the network, heartbeating and answering while the disk works (a synchronous
 * fdatasync here took 0.2 ms at p50 and 2.6 ms at p99, and far more under other processes'
 * writes); a small append the node may hold its loop for (a follower's, whose answer waits for
 * it) runs in line while appends are quick, sparing two hand-offs between threads
 * (`append-placement.ts`). The log is opened with `O_DSYNC` (unless `sync = "never"`): each
 * write returns once its data is durable, one call instead of a write and an fdatasync.
 * The node has at most one write in flight (`write-pipeline.ts`), so the order on disk is the
 * order of the calls. A snapshot the node takes is written and synced on the pool too, as
 * `snapshot.staged` (`stageSnapshot`), beside the current one; the write that names it then
 * only renames it into place. The rare rest (the hard-state file, a snapshot installed from the
 * leader, truncating a conflicting suffix, compaction) stays synchronous: it is ordered before
 * the append it precedes, and an election or a snapshot is worth a short block.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  write as writeAsync,
  writeSync
} from "node:fs"
import { open as openFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Metric, type Scope } from "effect"
import type { Entry } from "../message/types.ts"
import { AppendPlacement, type AppendPlacementOptions, type Placement } from "./append-placement.ts"
import type { SyncPolicy } from "./config.ts"
import { StorageError } from "./errors.ts"
import { encodeEntryRecord, scanEntryRecords, scanSnapshotRecord, snapshotRecordPieces } from "./records.ts"
import {
  emptyHardState,
  entriesAfterSnapshot,
  type HardState,
  type PersistedState,
  type RaftStorage,
  type SnapshotRecord,
  type WriteBatch,
  type WriteOptions
} from "./storage.ts"

const HARD_STATE = "hardstate.json"
const LOG = "log"
const SNAPSHOT = "snapshot"
/** A snapshot written off the loop (`stageSnapshot`), not yet current. */
const STAGED_SNAPSHOT = "snapshot.staged"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const isNotFound = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT"

const readIfExists = (path: string): Uint8Array | undefined => {
  try {
    return readFileSync(path)
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw error
  }
}

const writeAll = (fd: number, bytes: Uint8Array): void => {
  let written = 0
  while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written)
}

/** `writeAll` on the thread pool; `onDone` gets the error, if any. */
const writeAllAsync = (fd: number, bytes: Uint8Array, onDone: (error: NodeJS.ErrnoException | null) => void): void => {
  const from = (at: number) =>
    writeAsync(fd, bytes, at, bytes.length - at, null, (error, n) => {
      if (error !== null) return onDone(error)
      if (at + n < bytes.length) return from(at + n)
      onDone(null)
    })
  from(0)
}

/** Writes `pieces` to a new file at `path` on the thread pool, one after the other, and syncs it unless told not to. */
const writeFileAsync = async (path: string, pieces: ReadonlyArray<Uint8Array>, sync: boolean): Promise<void> => {
  const file = await openFile(path, "w")
  try {
    // On a handle, each `writeFile` writes all its bytes from where the last one ended.
    for (const piece of pieces) await file.writeFile(piece)
    if (sync) await file.sync()
  } finally {
    await file.close()
  }
}

/** The log's flags: appending, and with `O_DSYNC` every write is durable when it returns. */
const logFlags = (sync: SyncPolicy): number =>
  constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (sync === "never" ? 0 : constants.O_DSYNC)

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.length
  }
  return out
}

const parseHardState = (bytes: Uint8Array, path: string): HardState => {
  const value: unknown = JSON.parse(decoder.decode(bytes))
  const field = (name: string): number => {
    const v = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Error(`${path}: bad ${name}`)
    return v
  }
  return { term: field("term"), vote: field("vote"), commit: field("commit") }
}

/** Where each stored entry's record starts, so a suffix can be cut off by index. */
interface LogIndex {
  firstIndex: number
  offsets: Array<number>
  terms: Array<number>
  size: number
}

interface DirState {
  readonly hardState: HardState
  readonly snapshot: SnapshotRecord | undefined
  /** Every whole log record, snapshot or not. */
  readonly entries: ReadonlyArray<Entry>
  readonly index: LogIndex
  /** Where a torn last record starts, if there is one. */
  readonly tornAt: number | undefined
}

/** Reads and checks everything in `dir` without changing it. */
const readDir = (dir: string): DirState => {
  const hsPath = join(dir, HARD_STATE)
  const hsBytes = readIfExists(hsPath)
  const hardState = hsBytes === undefined ? emptyHardState : parseHardState(hsBytes, hsPath)

  let snapshot: SnapshotRecord | undefined
  const snapBytes = readIfExists(join(dir, SNAPSHOT))
  if (snapBytes !== undefined) {
    const scanned = scanSnapshotRecord(snapBytes)
    // The snapshot file is replaced by rename, so it is whole or absent: anything else is damage.
    if (scanned._tag !== "Complete" || scanned.records.length !== 1) {
      throw new StorageError({ operation: "open", path: join(dir, SNAPSHOT), cause: "damaged snapshot file" })
    }
    snapshot = scanned.records[0]!.value
  }

  const logPath = join(dir, LOG)
  const logBytes = readIfExists(logPath) ?? new Uint8Array(0)
  const scanned = scanEntryRecords(logBytes)
  if (scanned._tag === "Corrupt") {
    throw new StorageError({ operation: "open", path: logPath, cause: `log damaged at byte ${scanned.offset}: ${scanned.reason}` })
  }
  const tornAt = scanned._tag === "TornTail" ? scanned.validBytes : undefined
  const index: LogIndex = { firstIndex: 0, offsets: [], terms: [], size: tornAt ?? logBytes.length }
  const entries: Array<Entry> = []
  for (const { offset, value } of scanned.records) {
    const expected = index.offsets.length === 0 ? value.index : index.firstIndex + index.offsets.length
    if (value.index !== expected) {
      throw new StorageError({
        operation: "open",
        path: logPath,
        cause: `log not contiguous at byte ${offset}: index ${value.index}, expected ${expected}`
      })
    }
    if (index.offsets.length === 0) index.firstIndex = value.index
    index.offsets.push(offset)
    index.terms.push(value.term)
    entries.push(value)
  }
  return { hardState, snapshot, entries, index, tornAt }
}

/** The state a node starts from: the entries after the snapshot. */
const persistedStateOf = (state: DirState): PersistedState => ({
  hardState: state.hardState,
  snapshot: state.snapshot,
  entries: state.snapshot === undefined ? state.entries : entriesAfterSnapshot(state.entries, state.snapshot.metadata)
})

const LOG_APPENDS = "raft_node_log_appends_total"
const LOG_APPENDS_DESCRIPTION = "Log appends, by where they ran: in line on the event loop, or on libuv's thread pool"
const appendsInline = Metric.counter(LOG_APPENDS, { description: LOG_APPENDS_DESCRIPTION, attributes: { where: "inline" } })
const appendsOnPool = Metric.counter(LOG_APPENDS, { description: LOG_APPENDS_DESCRIPTION, attributes: { where: "pool" } })

/** Storage in files under a directory, durable per the `sync` policy. */
export class FileStorage implements RaftStorage {
  private fd: number
  private closed = false
  /** Writes on the thread pool: at most one append (the node writes one batch at a time) and one staged snapshot. */
  private onPool = 0
  /** `close` calls waiting for the writes on the pool to land. */
  private readonly onIdle: Array<() => void> = []
  /** The snapshot `stageSnapshot` made durable in `STAGED_SNAPSHOT`, until a snapshot is written. */
  private staged: SnapshotRecord | undefined
  /** What `open` recovered, until the first write: the node's `load` right after need not read the log again. */
  private recovered: PersistedState | undefined
  private readonly placement: AppendPlacement

  private constructor(
    readonly dir: string,
    private readonly sync: SyncPolicy,
    private hardState: HardState,
    private index: LogIndex,
    placement: AppendPlacementOptions | undefined
  ) {
    this.placement = new AppendPlacement(placement)
    this.fd = openSync(this.path(LOG), logFlags(sync))
  }

  /** Opens (creating if needed) the storage in `dir` and recovers what it holds. */
  static open(dir: string, sync: SyncPolicy, placement?: AppendPlacementOptions): Effect.Effect<FileStorage, StorageError> {
    return Effect.try({
      try: () => FileStorage.openUnsafe(dir, sync, placement),
      catch: (cause) => cause instanceof StorageError ? cause : new StorageError({ operation: "open", path: dir, cause })
    })
  }

  /** `open` with `close` tied to the scope. */
  static make(dir: string, sync: SyncPolicy, placement?: AppendPlacementOptions): Effect.Effect<FileStorage, StorageError, Scope.Scope> {
    return Effect.acquireRelease(FileStorage.open(dir, sync, placement), (storage) => storage.close)
  }

  private static openUnsafe(dir: string, sync: SyncPolicy, placement: AppendPlacementOptions | undefined): FileStorage {
    mkdirSync(dir, { recursive: true })
    // A snapshot staged and never moved into place (the node stopped in between) is garbage.
    rmSync(join(dir, STAGED_SNAPSHOT), { force: true })
    const state = readDir(dir)
    if (state.tornAt !== undefined) {
      // A crash during an append that was never acknowledged: drop the partial record.
      const fd = openSync(join(dir, LOG), "r+")
      try {
        ftruncateSync(fd, state.tornAt)
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
    }
    const storage = new FileStorage(dir, sync, state.hardState, state.index, placement)
    // Entries the snapshot covers survive a crash between saving a snapshot and compacting.
    if (state.snapshot !== undefined) storage.compactTo(state.snapshot.metadata)
    storage.recovered = persistedStateOf(state)
    return storage
  }

  /** What the directory holds now. */
  get load(): Effect.Effect<PersistedState, StorageError> {
    return Effect.try({
      try: () => this.recovered ?? persistedStateOf(readDir(this.dir)),
      catch: (cause) => cause instanceof StorageError ? cause : new StorageError({ operation: "load", path: this.dir, cause })
    })
  }

  write(batch: WriteBatch, options?: WriteOptions): Effect.Effect<void, StorageError> {
    const fail = (cause: unknown) => cause instanceof StorageError ? cause : new StorageError({ operation: "write", path: this.dir, cause })
    return Effect.suspend(() => {
      let records: ReadonlyArray<Uint8Array>
      try {
        records = this.prepareUnsafe(batch)
      } catch (cause) {
        return Effect.fail(fail(cause))
      }
      const hardState = Effect.try({ try: () => this.writeHardStateUnsafe(batch), catch: fail })
      if (records.length === 0) return hardState
      const fd = this.fd
      const chunks = this.sync === "always" ? records : [concat(records)]
      const bytes = chunks.reduce((n, c) => n + c.length, 0)
      const appendFailed = (cause: unknown) => new StorageError({ operation: "append", path: this.path(LOG), cause })
      const where = this.placement.of(bytes, options?.mayHoldLoop === true)
      const append = where === "inline"
        ? Effect.try({ try: () => chunks.forEach((chunk) => writeAll(fd, chunk)), catch: appendFailed })
        : this.onThreadPool<StorageError>((settle) => {
          const next = (i: number) => {
            if (i === chunks.length) return settle(Effect.void)
            writeAllAsync(fd, chunks[i]!, (error) => {
              if (error !== null) return settle(Effect.fail(appendFailed(error)))
              next(i + 1)
            })
          }
          next(0)
        })
      return Effect.clockWith((clock) => {
        const start = clock.currentTimeNanosUnsafe()
        return append.pipe(
          Effect.andThen(Effect.suspend(() => this.placed(where, Number(clock.currentTimeNanosUnsafe() - start) / 1e6))),
          Effect.andThen(hardState)
        )
      })
    })
  }

  /** Counts an append and moves the next one in line or to the pool by how long this one took. */
  private placed(where: Placement, ms: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const count = Metric.update(where === "inline" ? appendsInline : appendsOnPool, 1)
      if (!this.placement.took(ms)) return count
      return Effect.andThen(
        count,
        Effect.logDebug(`small log appends go ${this.placement.slowDisk ? "to the thread pool" : "in line where the loop may wait"}: the last took ${ms.toFixed(2)} ms`)
      )
    })
  }

  /**
   * Writes and syncs `record` to `STAGED_SNAPSHOT` on the thread pool; `write` with the same
   * record renames it into place. A snapshot of a large state is megabytes and several
   * milliseconds of fsync: written in line, it holds every fiber of the node (64,000 keys: 8 MB,
   * 29-178 ms; `npx tsx bench/tools/snapshot-stall.ts`).
   */
  stageSnapshot(record: SnapshotRecord): Effect.Effect<void, StorageError> {
    return Effect.suspend(() => {
      const path = this.path(STAGED_SNAPSHOT)
      if (this.closed) return Effect.fail(new StorageError({ operation: "stage snapshot", path, cause: "storage is closed" }))
      const pieces = snapshotRecordPieces(record)
      const sync = this.sync !== "never"
      const staged = this.onThreadPool<StorageError>((settle) => {
        writeFileAsync(path, pieces, sync).then(
          () => settle(Effect.void),
          (cause: unknown) => settle(Effect.fail(new StorageError({ operation: "stage snapshot", path, cause })))
        )
      })
      return Effect.map(staged, () => void (this.staged = record))
    })
  }

  /**
   * Runs `start` (work on the thread pool that calls `settle` once, when it has landed) and
   * completes with its result. An interrupted node may close the storage meanwhile: the log's
   * descriptor is closed only once nothing is left on the pool, so no later open can reuse its
   * number under a write.
   */
  private onThreadPool<E>(start: (settle: (result: Effect.Effect<void, E>) => void) => void): Effect.Effect<void, E> {
    return Effect.callback<void, E>((resume) => {
      this.onPool++
      start((result) => {
        if (--this.onPool === 0 && this.closed) {
          closeSync(this.fd)
          for (const wake of this.onIdle.splice(0)) wake()
        }
        resume(result)
      })
    })
  }

  get snapshotLocation(): string {
    return this.path(SNAPSHOT)
  }

  /**
   * Closes the log once an append on the pool has landed: the node that wrote it may be gone
   * (interrupted), but the storage reopened in the same process must not see the file grow
   * under it.
   */
  get close(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (!this.closed) {
        this.closed = true
        if (this.onPool === 0) closeSync(this.fd)
      }
      if (this.onPool === 0) return resume(Effect.void)
      this.onIdle.push(() => resume(Effect.void))
    })
  }

  private path(name: string): string {
    return join(this.dir, name)
  }

  /**
   * The synchronous part of a write, in batch order: the snapshot, cutting a conflicting suffix,
   * the index of the new records; returns the records to append.
   */
  private prepareUnsafe(batch: WriteBatch): ReadonlyArray<Uint8Array> {
    if (this.closed) throw new StorageError({ operation: "write", path: this.dir, cause: "storage is closed" })
    this.recovered = undefined
    if (batch.snapshot !== undefined) {
      if (batch.snapshot === this.staged) this.replace(this.path(STAGED_SNAPSHOT), this.path(SNAPSHOT))
      else this.writeFileAtomic(SNAPSHOT, ...snapshotRecordPieces(batch.snapshot))
      // Whatever was staged is older than this snapshot now: never moved into place.
      this.staged = undefined
      this.compactTo(batch.snapshot.metadata)
    }
    return batch.entries !== undefined && batch.entries.length > 0 ? this.indexEntries(batch.entries) : []
  }

  /** The hard state after the entries; only a new term or vote (or a snapshot) is written. */
  private writeHardStateUnsafe(batch: WriteBatch): void {
    const hs = batch.hardState
    if (hs !== undefined) {
      const changed = hs.term !== this.hardState.term || hs.vote !== this.hardState.vote
      if (changed || batch.snapshot !== undefined) {
        this.writeFileAtomic(HARD_STATE, encoder.encode(JSON.stringify(hs)))
        this.hardState = hs
      }
    }
  }

  /** Cuts a conflicting suffix, records where each new entry will be; returns their records. */
  private indexEntries(entries: ReadonlyArray<Entry>): ReadonlyArray<Uint8Array> {
    const first = entries[0]!.index
    const ix = this.index
    const count = ix.offsets.length
    if (count === 0) {
      ix.firstIndex = first
    } else if (first <= ix.firstIndex + count - 1) {
      // §5.3: the stored suffix from `first` conflicts with the leader's log; cut it off.
      if (first < ix.firstIndex) {
        throw new StorageError({
          operation: "append",
          path: this.path(LOG),
          cause: `cannot replace index ${first}: the log starts at ${ix.firstIndex}`
        })
      }
      const keep = first - ix.firstIndex
      ix.size = ix.offsets[keep]!
      ix.offsets.length = keep
      ix.terms.length = keep
      ftruncateSync(this.fd, ix.size)
    } else if (first !== ix.firstIndex + count) {
      throw new StorageError({
        operation: "append",
        path: this.path(LOG),
        cause: `log gap: appending index ${first} after ${ix.firstIndex + count - 1}`
      })
    }
    const records = entries.map(encodeEntryRecord)
    for (let i = 0; i < records.length; i++) {
      ix.offsets.push(ix.size)
      ix.terms.push(entries[i]!.term)
      ix.size += records[i]!.length
    }
    return records
  }

  /** Drops entries up to the snapshot (all of them if the log disagrees with it, §7). */
  private compactTo(snapshot: SnapshotRecord["metadata"]): void {
    const ix = this.index
    const count = ix.offsets.length
    if (count === 0) {
      ix.firstIndex = snapshot.index + 1
      return
    }
    // The log already starts right after this snapshot (it was saved again): nothing to drop.
    if (ix.firstIndex === snapshot.index + 1) return
    if (snapshot.index < ix.firstIndex) {
      throw new StorageError({
        operation: "compact",
        path: this.path(LOG),
        cause: `snapshot at ${snapshot.index} is older than the log, which starts at ${ix.firstIndex}`
      })
    }
    const at = snapshot.index - ix.firstIndex
    const keepFrom = at < count && ix.terms[at] === snapshot.term ? at + 1 : count
    const start = keepFrom < count ? ix.offsets[keepFrom]! : ix.size
    const retained = readFileSync(this.path(LOG)).subarray(start, ix.size)
    closeSync(this.fd)
    this.writeFileAtomic(LOG, retained)
    this.fd = openSync(this.path(LOG), logFlags(this.sync))
    this.index = {
      firstIndex: snapshot.index + 1,
      offsets: ix.offsets.slice(keepFrom).map((o) => o - start),
      terms: ix.terms.slice(keepFrom),
      size: ix.size - start
    }
  }

  /** Replaces file `name` with `pieces`, one after the other. */
  private writeFileAtomic(name: string, ...pieces: ReadonlyArray<Uint8Array>): void {
    const target = this.path(name)
    const temp = `${target}.tmp`
    const fd = openSync(temp, "w")
    try {
      for (const piece of pieces) writeAll(fd, piece)
      if (this.sync !== "never") fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    this.replace(temp, target)
  }

  /** Renames the durable file `from` over `to`, and syncs the directory so the rename is durable too. */
  private replace(from: string, to: string): void {
    renameSync(from, to)
    if (this.sync !== "never") {
      const dirFd = openSync(this.dir, "r")
      try {
        fsyncSync(dirFd)
      } finally {
        closeSync(dirFd)
      }
    }
  }
}
