/**
 * File storage recovery after a power loss in the middle of an append (`sync = "batch"` or
 * `"never"`): file systems (ext4 with delayed allocation, XFS) may persist the new file size but
 * not the data, so the unsynced tail reads back as zeros. Those bytes were never acknowledged
 * (the fdatasync had not returned), so they are a torn tail like any other and must be cut off,
 * not reported as damage that stops the node from starting.
 */
import { appendFileSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { Entry } from "../src/message/types.ts"
import { FileStorage } from "../src/raft/file-storage.ts"
import { encodeEntryRecord } from "../src/raft/records.ts"
import type { RaftStorage } from "../src/raft/storage.ts"
import { tempDir } from "./support/raft-cluster.ts"

const bytes = (s: string) => new TextEncoder().encode(s)
const entry = (index: number, term: number): Entry => ({ index, term, data: bytes(`e${index}t${term}`), context: bytes(`ctx${index}`) })
const range = (from: number, to: number, term: number) => Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, term))

const inDir = <A>(dir: string, f: (s: RaftStorage) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(FileStorage.make(dir, "batch"), f))

const indexesIn = (dir: string) => Effect.map(inDir(dir, (s) => s.load), (st) => st.entries.map((e) => `${e.index}:${e.term}`))

describe("file storage recovery: zero-filled tail", () => {
  it.effect("a tail of zero bytes (file size persisted, data not) is cut off, and the log goes on", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("raft-storage-zero-")
      yield* inDir(dir, (s) => s.write({ entries: range(1, 3, 1) }))
      const log = join(dir, "log")
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
      const dir = yield* tempDir("raft-storage-zero-")
      yield* inDir(dir, (s) => s.write({ entries: range(1, 2, 1) }))
      const log = join(dir, "log")
      // Entry 3's first bytes made it, the rest of its page (and of the file) is zeros.
      const next = encodeEntryRecord(entry(3, 1))
      const page = new Uint8Array(next.length + 512)
      page.set(next.subarray(0, 12))
      appendFileSync(log, page)
      expect(yield* indexesIn(dir)).toEqual(["1:1", "2:1"])
    }))

  it.effect("zeros followed by real data are still damage: nothing is guessed away", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("raft-storage-zero-")
      yield* inDir(dir, (s) => s.write({ entries: range(1, 2, 1) }))
      const log = join(dir, "log")
      appendFileSync(log, new Uint8Array(64))
      appendFileSync(log, encodeEntryRecord(entry(3, 1)))
      const before = readFileSync(log).length
      const error = yield* Effect.flip(Effect.scoped(FileStorage.make(dir, "batch")))
      expect(error._tag).toBe("StorageError")
      expect(error.message).toMatch(/log damaged at byte \d+/)
      expect(readFileSync(log).length).toBe(before)
    }))
})
