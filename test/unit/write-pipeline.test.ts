import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, type Exit } from "effect"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import { StorageError } from "../../src/raft/errors.ts"
import type { RaftStorage, WriteBatch, WriteOptions } from "../../src/raft/storage.ts"
import { WritePipeline } from "../../src/raft/write-pipeline.ts"

const entry = (index: number) => ({ term: 1, index, data: new Uint8Array([index]) })
const response = (index: number): RaftMessage => ({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 1, index })
const append = (index: number): RaftMessage => ({ msgType: MessageType.Append, from: 1, to: 2, term: 1, index })

/**
 * A pipeline over a storage whose writes finish when the test says so, recording when each
 * write starts and when the loop learns the log is durable.
 */
const harness = Effect.gen(function*() {
  const log: Array<string> = []
  const finishes: Array<Deferred.Deferred<void, StorageError>> = []
  const storage: RaftStorage = {
    load: Effect.die("not used"),
    write: (batch: WriteBatch, options?: WriteOptions) =>
      Effect.suspend(() => {
        const holding = options?.mayHoldLoop === true ? " (may hold the loop)" : ""
        log.push(`write ${batch.entries?.map((e) => e.index).join(",") ?? ""}${holding}`)
        const finish = Deferred.makeUnsafe<void, StorageError>()
        finishes.push(finish)
        return Deferred.await(finish)
      }),
    close: Effect.void
  }
  const completions: Array<{ readonly seq: number; readonly exit: Exit.Exit<void, StorageError> }> = []
  const pipeline = new WritePipeline({
    storage,
    scope: yield* Effect.scope,
    hardState: { term: 1, vote: 0, commit: 0 },
    notify: (seq, exit) => Effect.sync(() => void completions.push({ seq, exit })),
    onDurable: (index) => void log.push(`durable ${index}`)
  })
  const round = (entries: ReadonlyArray<ReturnType<typeof entry>>, messages: ReadonlyArray<RaftMessage>) => {
    const last = entries.at(-1)?.index ?? 0
    return pipeline.stage({ entries, hardState: undefined, messages, lastIndex: last, lastTerm: 1 })
  }
  return { log, finishes, completions, pipeline, round }
})

describe("the write pipeline", () => {
  it.effect("what a write holds goes out when the loop takes its completion; one write at a time, the next holds what came meanwhile", () =>
    Effect.gen(function*() {
      const { completions, finishes, log, pipeline, round } = yield* harness
      expect(yield* round([entry(1)], [response(1)])).toEqual([])
      yield* pipeline.kick(false)
      expect(log).toEqual(["write 1 (may hold the loop)"])
      // Staged while write 1 is in flight: held for write 2, which waits for write 1.
      expect(yield* round([entry(2)], [response(2)])).toEqual([])
      yield* pipeline.kick(false)
      expect(log).toEqual(["write 1 (may hold the loop)"])
      yield* Deferred.succeed(finishes[0]!, undefined)
      yield* Effect.yieldNow
      expect(yield* pipeline.completed(completions[0]!.seq, completions[0]!.exit)).toEqual([response(1)])
      expect(log).toEqual(["write 1 (may hold the loop)", "durable 1"])
      yield* pipeline.kick(false)
      expect(log.at(-1)).toBe("write 2 (may hold the loop)")
    }).pipe(Effect.scoped))

  it.effect("a round that sent messages starts its write after them, and the write may not hold the loop: the transport's writers go first", () =>
    Effect.gen(function*() {
      const { log, pipeline, round } = yield* harness
      expect(yield* round([entry(1)], [append(1)])).toEqual([append(1)])
      yield* pipeline.kick(true)
      expect(log).toEqual([])
      yield* Effect.yieldNow
      expect(log).toEqual(["write 1"])
    }).pipe(Effect.scoped))

  it.effect("a failed write reports nothing durable and fails the loop's completion", () =>
    Effect.gen(function*() {
      const { completions, finishes, log, pipeline, round } = yield* harness
      yield* round([entry(1)], [response(1)])
      yield* pipeline.kick(false)
      yield* Deferred.fail(finishes[0]!, new StorageError({ operation: "append", path: "x", cause: "disk full" }))
      yield* Effect.yieldNow
      expect(log).toEqual(["write 1 (may hold the loop)"])
      const failed = yield* Effect.exit(pipeline.completed(completions[0]!.seq, completions[0]!.exit))
      expect(failed._tag).toBe("Failure")
    }).pipe(Effect.scoped))
})
