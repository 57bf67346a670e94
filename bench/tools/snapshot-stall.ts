/**
 * How long a snapshot of a large KV state holds a node's event loop, the two ways a node can
 * take it: in one go (`snapshot()` then a `write` that saves the file and compacts the log, all
 * on the loop: what a node does with a state machine without `captureSnapshot` and a storage
 * without `stageSnapshot`), and the way the shipped KV node does (the state captured, encoded a
 * slice at a time, the file written and synced on libuv's pool by `stageSnapshot`, then a
 * `write` that renames it into place and compacts the log).
 *
 *   npx tsx bench/tools/snapshot-stall.ts [keys=64000] [rounds=5]
 *
 * The store holds `keys` keys of 100 B values and a log of 10,000 entries (the default
 * `snapshot_threshold`) in a fresh directory, synced as `sync = "batch"` does. The rounds
 * alternate the two ways. For the sliced way, the longest hold is the longest of: the capture,
 * the event loop's worst delay (`monitorEventLoopDelay`, 1 ms resolution) while the slices are
 * encoded and joined with yields between them and the file is written on the pool, and the
 * final write. Each round also times what a follower installing the snapshot does on its loop:
 * `validate` as it arrives, then `restore`.
 */
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import type { Entry } from "../../src/message/types.ts"
import { FileStorage } from "../../src/raft/file-storage.ts"
import { encodeKvCommand, KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import { encodeCapture } from "../../src/raft/state-machine.ts"
import type { SnapshotRecord } from "../../src/raft/storage.ts"

const keys = Number(process.argv[2] ?? 64_000)
const rounds = Number(process.argv[3] ?? 5)
const LOG_ENTRIES = 10_000
const VALUE = "v".repeat(100)

const ms = (x: number) => x.toFixed(1)

const main = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "snapshot-stall-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const storage = yield* FileStorage.make(dir, "batch")
  const sm = new KvStateMachine()
  for (let i = 0; i < keys; i++) {
    sm.apply({ index: i + 1, term: 1, data: encodeKvCommand({ op: "put", key: `client-${i % 64}-key-${i}`, value: VALUE }) })
  }
  let index = 0
  /** Appends a threshold's worth of entries, so each snapshot compacts a full log. */
  const fillLog = Effect.suspend(() => {
    const entries: Array<Entry> = []
    for (let i = 0; i < LOG_ENTRIES; i++) {
      index++
      entries.push({ index, term: 1, data: encodeKvCommand({ op: "put", key: `client-0-key-${i}`, value: VALUE }) })
    }
    return storage.write({ entries })
  })
  const hardState = () => ({ term: 1, vote: 1, commit: index })
  const metadata = () => ({ index: index - 10, term: 1, confState: { voters: [1, 2, 3], learners: [] } })

  console.log(`${keys} keys, a log of ${LOG_ENTRIES} entries; longest hold of the event loop per snapshot (ms)`)
  for (let round = 1; round <= rounds; round++) {
    yield* fillLog
    const t0 = performance.now()
    const whole: SnapshotRecord = { metadata: metadata(), data: sm.snapshot() }
    const t1 = performance.now()
    yield* storage.write({ snapshot: whole, hardState: hardState() })
    const t2 = performance.now()
    console.log(`round ${round}, in one go: ${ms(t2 - t0)} (encode ${ms(t1 - t0)}, write ${ms(t2 - t1)}; ${(whole.data.length / 1e6).toFixed(1)} MB)`)
    // A follower installing it from the leader: checked as it arrives, then restored.
    const follower = new KvStateMachine()
    const i0 = performance.now()
    const problem = follower.validate(whole.data)
    const i1 = performance.now()
    follower.restore(whole.data)
    const i2 = performance.now()
    if (problem !== undefined || follower.size !== sm.size) throw new Error(`the snapshot does not restore: ${problem}`)
    console.log(`round ${round}, installing it: validate ${ms(i1 - i0)}, restore ${ms(i2 - i1)}`)

    yield* fillLog
    const c0 = performance.now()
    const capture = sm.captureSnapshot()
    const captureMs = performance.now() - c0
    const delay = monitorEventLoopDelay({ resolution: 1 })
    delay.enable()
    const e0 = performance.now()
    const record: SnapshotRecord = { metadata: metadata(), data: yield* encodeCapture(capture) }
    const encodeMs = performance.now() - e0
    const g0 = performance.now()
    yield* storage.stageSnapshot(record)
    const stageMs = performance.now() - g0
    delay.disable()
    const f0 = performance.now()
    yield* storage.write({ snapshot: record, hardState: hardState() })
    const finishMs = performance.now() - f0
    const worstDelay = delay.max / 1e6
    const longest = Math.max(captureMs, worstDelay, finishMs)
    console.log(
      `round ${round}, sliced and staged: ${ms(longest)} (capture ${ms(captureMs)}, worst loop delay while encoding ` +
        `(${ms(encodeMs)}) and staging (${ms(stageMs)}) ${ms(worstDelay)}, final write ${ms(finishMs)})`
    )
  }
})

Effect.runPromise(Effect.scoped(main)).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
