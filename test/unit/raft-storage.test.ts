/**
 * Raft storage: the same contract for memory and file storage (round trip, conflicting-suffix
 * truncation, snapshot compaction), and file recovery (torn last record, damage, a crash
 * between snapshot and compaction).
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import type { Entry } from "../../src/message/types.ts"
import type { SyncPolicy } from "../../src/raft/config.ts"
import { AppendPlacement } from "../../src/raft/append-placement.ts"
import { FileStorage } from "../../src/raft/file-storage.ts"
import { MemoryStorage } from "../../src/raft/memory-storage.ts"
import { encodeEntryRecord } from "../../src/raft/records.ts"
import type { PersistedState, RaftStorage, SnapshotRecord } from "../../src/raft/storage.ts"
import { tempDir } from "../support/raft-cluster.ts"

const bytes = (s: string) => new TextEncoder().encode(s)
const entry = (index: number, term: number, data = `e${index}t${term}`): Entry => ({
  index,
  term,
  data: bytes(data),
  context: bytes(`ctx${index}`)
})
const range = (from: number, to: number, term: number) =>
  Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, term))
const snapshot = (index: number, term: number, data = "state"): SnapshotRecord => ({
  metadata: { index, term, confState: { voters: [1, 2, 3], learners: [] } },
  data: bytes(data)
})
const summary = (s: PersistedState) => ({
  hardState: s.hardState,
  snapshot: s.snapshot === undefined ? undefined : { ...s.snapshot.metadata, data: new TextDecoder().decode(s.snapshot.data) },
  entries: s.entries.map((e) => `${e.index}:${e.term}:${new TextDecoder().decode(e.data ?? new Uint8Array())}`)
})

/** A storage that can be "reopened": memory storage is the same object, file storage re-reads the directory. */
interface Harness {
  readonly open: Effect.Effect<RaftStorage, unknown, Scope.Scope>
}

const memoryHarness = (): Effect.Effect<Harness> =>
  Effect.sync(() => {
    const storage = new MemoryStorage()
    return { open: Effect.succeed(storage) }
  })

/**
 * File storage whose writes are told they may hold the loop (`mayHoldLoop`, a follower's), so
 * its appends run in line while quick and small; written without it, every append is on the pool.
 */
const holdingLoop = (storage: FileStorage): RaftStorage => ({
  load: storage.load,
  write: (batch) => storage.write(batch, { mayHoldLoop: true }),
  stageSnapshot: (record) => storage.stageSnapshot(record),
  close: storage.close,
  snapshotLocation: storage.snapshotLocation
})

const fileHarness = (sync: SyncPolicy, appends: "pool" | "inline" = "pool"): Effect.Effect<Harness, never, Scope.Scope> =>
  Effect.map(tempDir("raft-storage-"), (dir) => ({
    open: appends === "pool" ? FileStorage.make(dir, sync) : Effect.map(FileStorage.make(dir, sync), holdingLoop)
  }))

/** Opens, runs `f`, closes. */
const session = <A>(h: Harness, f: (s: RaftStorage) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(h.open, f))

const load = (h: Harness) => session(h, (s) => Effect.map(s.load, summary))

/** `session` on file storage (sync=batch) in `dir`, opened afresh: what a restarted node does. */
const inDir = <A>(dir: string, f: (s: RaftStorage) => Effect.Effect<A, unknown>) =>
  session({ open: FileStorage.make(dir, "batch") }, f)

/** `index:term` of every entry a fresh open of `dir` recovers. */
const indexesIn = (dir: string) => Effect.map(inDir(dir, (s) => s.load), (st) => st.entries.map((e) => `${e.index}:${e.term}`))

const contract = (name: string, make: () => Effect.Effect<Harness, never, Scope.Scope>) =>
  describe(`raft storage contract: ${name}`, () => {
    it.effect("round trip: hard state, entries and snapshot come back as written", () =>
      Effect.gen(function*() {
        const h = yield* make()
        expect(yield* load(h)).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, snapshot: undefined, entries: [] })
        yield* session(h, (s) =>
          Effect.gen(function*() {
            yield* s.write({ entries: range(1, 3, 1), hardState: { term: 1, vote: 2, commit: 2 } })
            yield* s.write({ entries: range(4, 5, 2), hardState: { term: 2, vote: 0, commit: 4 } })
          }))
        const back = yield* load(h)
        expect(back.hardState.term).toBe(2)
        expect(back.hardState.vote).toBe(0)
        expect(back.entries).toEqual(["1:1:e1t1", "2:1:e2t1", "3:1:e3t1", "4:2:e4t2", "5:2:e5t2"])
        // Context survives too (forwarded proposals are matched by it).
        const ctx = yield* session(h, (s) => Effect.map(s.load, (st) => new TextDecoder().decode(st.entries[4]!.context)))
        expect(ctx).toBe("ctx5")
      }))

    it.effect("load reflects writes made through the same instance", () =>
      Effect.gen(function*() {
        const h = yield* make()
        const back = yield* session(h, (s) =>
          Effect.gen(function*() {
            yield* s.write({ entries: range(1, 4, 1), hardState: { term: 1, vote: 1, commit: 0 } })
            yield* s.write({ snapshot: snapshot(2, 1) })
            return summary(yield* s.load)
          }))
        expect(back.entries).toEqual(["3:1:e3t1", "4:1:e4t1"])
        expect(back.snapshot?.index).toBe(2)
      }))

    it.effect("a conflicting suffix is replaced (§5.3)", () =>
      Effect.gen(function*() {
        const h = yield* make()
        yield* session(h, (s) => s.write({ entries: range(1, 10, 1) }))
        yield* session(h, (s) => s.write({ entries: range(6, 8, 2) }))
        expect((yield* load(h)).entries).toEqual([
          "1:1:e1t1", "2:1:e2t1", "3:1:e3t1", "4:1:e4t1", "5:1:e5t1", "6:2:e6t2", "7:2:e7t2", "8:2:e8t2"
        ])
        // Appending after a truncation continues the new suffix.
        yield* session(h, (s) => s.write({ entries: [entry(9, 2)] }))
        expect((yield* load(h)).entries.slice(-2)).toEqual(["8:2:e8t2", "9:2:e9t2"])
      }))

    it.effect("a snapshot matching the log keeps the entries after it (§7)", () =>
      Effect.gen(function*() {
        const h = yield* make()
        yield* session(h, (s) => s.write({ entries: range(1, 10, 1) }))
        yield* session(h, (s) => s.write({ snapshot: snapshot(6, 1), hardState: { term: 1, vote: 1, commit: 6 } }))
        const back = yield* load(h)
        expect(back.snapshot).toEqual({ index: 6, term: 1, confState: { voters: [1, 2, 3], learners: [] }, data: "state" })
        expect(back.entries).toEqual(["7:1:e7t1", "8:1:e8t1", "9:1:e9t1", "10:1:e10t1"])
        // Appends and truncation keep working on the compacted log.
        yield* session(h, (s) => s.write({ entries: range(9, 11, 3) }))
        expect((yield* load(h)).entries).toEqual(["7:1:e7t1", "8:1:e8t1", "9:3:e9t3", "10:3:e10t3", "11:3:e11t3"])
      }))

    it.effect("a snapshot the log disagrees with discards the whole log (§7)", () =>
      Effect.gen(function*() {
        const h = yield* make()
        yield* session(h, (s) => s.write({ entries: range(1, 5, 1) }))
        // Index 4 has term 1 here, the snapshot says term 2: the log is not a prefix of it.
        yield* session(h, (s) => s.write({ snapshot: snapshot(4, 2) }))
        expect((yield* load(h)).entries).toEqual([])
        yield* session(h, (s) => s.write({ snapshot: snapshot(20, 3), entries: range(21, 22, 3) }))
        const back = yield* load(h)
        expect(back.snapshot?.index).toBe(20)
        expect(back.entries).toEqual(["21:3:e21t3", "22:3:e22t3"])
      }))
  })

contract("memory", memoryHarness)
contract("file (sync=batch)", () => fileHarness("batch"))
contract("file (sync=always)", () => fileHarness("always"))
contract("file (sync=never)", () => fileHarness("never"))
contract("file (sync=batch, appends in line)", () => fileHarness("batch", "inline"))
contract("file (sync=always, appends in line)", () => fileHarness("always", "inline"))

describe("where log appends run", () => {
  it("in line when the node may hold its loop, the last append was quick and this one is small; else on the pool", () => {
    const placement = new AppendPlacement({ inlineMaxBytes: 1000, slowMs: 2 })
    expect(placement.of(1000, true)).toBe("inline")
    expect(placement.of(1001, true)).toBe("pool")
    // A leader's append, beside its appends to the followers still being written out.
    expect(placement.of(10, false)).toBe("pool")
    expect(placement.took(0.5)).toBe(false)
    expect(placement.of(10, true)).toBe("inline")
    // A slow disk: the next appends go to the pool, until one there is quick again.
    expect(placement.took(2.5)).toBe(true)
    expect(placement.slowDisk).toBe(true)
    expect(placement.of(10, true)).toBe("pool")
    expect(placement.took(30)).toBe(false)
    expect(placement.of(10, true)).toBe("pool")
    expect(placement.took(1)).toBe(true)
    expect(placement.slowDisk).toBe(false)
    expect(placement.of(10, true)).toBe("inline")
  })
})

/** A file log holding entries 1..`last` (term 1), written and closed; its directory and log file. */
const logWithEntries = (last: number) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("raft-storage-")
    yield* inDir(dir, (s) => s.write({ entries: range(1, last, 1) }))
    return { dir, log: join(dir, "log") }
  })

describe("file storage recovery", () => {
  it.effect("a torn last record (crash mid-append) is discarded and the file truncated", () =>
    Effect.gen(function*() {
      const { dir, log } = yield* logWithEntries(4)
      const whole = statSync(log).size
      // Half of the next record reached the disk.
      const next = encodeEntryRecord(entry(5, 1))
      appendFileSync(log, next.subarray(0, next.length - 3))
      const back = yield* inDir(dir, (s) => s.load)
      expect(back.entries.map((e) => e.index)).toEqual([1, 2, 3, 4])
      expect(statSync(log).size).toBe(whole)
      // And the log goes on from there.
      yield* inDir(dir, (s) => s.write({ entries: [entry(5, 2)] }))
      const again = yield* inDir(dir, (s) => s.load)
      expect(again.entries.map((e) => `${e.index}:${e.term}`)).toEqual(["1:1", "2:1", "3:1", "4:1", "5:2"])
    }))

  it.effect("a torn header, or a whole last record with a bad checksum, is a torn tail too", () =>
    Effect.gen(function*() {
      const { dir, log } = yield* logWithEntries(2)
      appendFileSync(log, new Uint8Array([0, 0, 0]))
      expect((yield* inDir(dir, (s) => s.load)).entries).toHaveLength(2)
      const flipped = encodeEntryRecord(entry(3, 1))
      flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0xff
      appendFileSync(log, flipped)
      expect((yield* inDir(dir, (s) => s.load)).entries).toHaveLength(2)
    }))

  // A power loss mid-append with `sync = "batch"` or `"never"`: file systems (ext4 with delayed
  // allocation, XFS) may persist the new file size but not the data, so the unsynced tail reads
  // back as zeros. Never acknowledged, so a torn tail like any other, not damage that stops the
  // node from starting.
  it.effect("a tail of zero bytes (file size persisted, data not) is cut off, and the log goes on", () =>
    Effect.gen(function*() {
      const { dir, log } = yield* logWithEntries(3)
      const whole = statSync(log).size
      // The next append extended the file by a page, none of whose data reached the disk.
      appendFileSync(log, new Uint8Array(4096))
      expect(yield* indexesIn(dir)).toEqual(["1:1", "2:1", "3:1"])
      expect(statSync(log).size).toBe(whole)
      yield* inDir(dir, (s) => s.write({ entries: [entry(4, 2)] }))
      expect(yield* indexesIn(dir)).toEqual(["1:1", "2:1", "3:1", "4:2"])
    }))

  it.effect("a record whose end did not reach the disk, followed by zeros to the end of the file, is a torn tail", () =>
    Effect.gen(function*() {
      const { dir, log } = yield* logWithEntries(2)
      // Entry 3's first bytes made it, the rest of its page (and of the file) is zeros.
      const next = encodeEntryRecord(entry(3, 1))
      const page = new Uint8Array(next.length + 512)
      page.set(next.subarray(0, 12))
      appendFileSync(log, page)
      expect(yield* indexesIn(dir)).toEqual(["1:1", "2:1"])
    }))

  it.effect("zeros followed by real data are still damage: nothing is guessed away", () =>
    Effect.gen(function*() {
      const { dir, log } = yield* logWithEntries(2)
      appendFileSync(log, new Uint8Array(64))
      appendFileSync(log, encodeEntryRecord(entry(3, 1)))
      const before = readFileSync(log).length
      const error = yield* Effect.flip(Effect.scoped(FileStorage.make(dir, "batch")))
      expect(error._tag).toBe("StorageError")
      expect(error.message).toMatch(/log damaged at byte \d+/)
      expect(readFileSync(log).length).toBe(before)
    }))

  it.effect("damage in the middle of the log is an error, not silently dropped entries", () =>
    Effect.gen(function*() {
      const { dir, log } = yield* logWithEntries(3)
      const data = readFileSync(log)
      data[10] = data[10]! ^ 0xff
      writeFileSync(log, data)
      const error = yield* Effect.flip(Effect.scoped(FileStorage.make(dir, "batch")))
      expect(error._tag).toBe("StorageError")
      expect(error.message).toMatch(/log damaged at byte 0: checksum mismatch/)
    }))

  it.effect("entries a saved snapshot covers are dropped on open (crash between snapshot and compaction)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("raft-storage-")
      yield* inDir(dir, (s) => s.write({ entries: range(1, 6, 1) }))
      const fullLog = readFileSync(join(dir, "log"))
      yield* inDir(dir, (s) => s.write({ snapshot: snapshot(4, 1) }))
      // Put the uncompacted log back, as if the process died right after saving the snapshot.
      writeFileSync(join(dir, "log"), fullLog)
      const back = yield* inDir(dir, (s) => s.load)
      expect(back.snapshot?.metadata.index).toBe(4)
      expect(back.entries.map((e) => e.index)).toEqual([5, 6])
      const after = yield* inDir(dir, (s) => s.load)
      expect(after.entries.map((e) => e.index)).toEqual([5, 6])
    }))

  it.effect("hard state is replaced atomically (no temp files left) and survives reopening", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("raft-storage-")
      yield* inDir(dir, (s) =>
        Effect.gen(function*() {
          yield* s.write({ hardState: { term: 3, vote: 2, commit: 0 } })
          yield* s.write({ hardState: { term: 5, vote: 1, commit: 0 } })
        }))
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([])
      expect(JSON.parse(readFileSync(join(dir, "hardstate.json"), "utf8"))).toEqual({ term: 5, vote: 1, commit: 0 })
      const back = yield* inDir(dir, (s) => s.load)
      expect(back.hardState).toEqual({ term: 5, vote: 1, commit: 0 })
      expect(existsSync(join(dir, "snapshot"))).toBe(false)
    }))

  it.effect("a staged snapshot is moved into place by the write that names it; a different snapshot written meanwhile wins", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("raft-storage-")
      yield* Effect.scoped(Effect.flatMap(FileStorage.make(dir, "batch"), (s) =>
        Effect.gen(function*() {
          yield* s.write({ entries: range(1, 8, 1) })
          const staged = snapshot(4, 1, "staged state")
          yield* s.stageSnapshot(staged)
          // Durable beside the current snapshot, not yet current.
          expect(existsSync(join(dir, "snapshot.staged"))).toBe(true)
          expect((yield* s.load).snapshot).toBeUndefined()
          yield* s.write({ snapshot: staged, entries: range(9, 9, 1) })
          expect(existsSync(join(dir, "snapshot.staged"))).toBe(false)

          // Staged, then overtaken by another snapshot (one installed from the leader): the
          // staged file is never moved in, and writing its record again writes it in full.
          const overtaken = snapshot(6, 1, "overtaken")
          yield* s.stageSnapshot(overtaken)
          yield* s.write({ snapshot: snapshot(7, 1, "installed") })
          expect(summary(yield* s.load).snapshot).toEqual({ index: 7, term: 1, confState: { voters: [1, 2, 3], learners: [] }, data: "installed" })
        })))
      // The overtaken one is still on disk, staged: the next open removes it.
      expect(existsSync(join(dir, "snapshot.staged"))).toBe(true)
      const back = summary(yield* inDir(dir, (s) => s.load))
      expect(existsSync(join(dir, "snapshot.staged"))).toBe(false)
      expect(back.snapshot?.data).toBe("installed")
      expect(back.entries).toEqual(["8:1:e8t1", "9:1:e9t1"])
    }))
})
