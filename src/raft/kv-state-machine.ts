import type { Entry } from "../message/types.ts"
import { RunMerge } from "./run-merge.ts"
import { joinSlices, type SnapshotCapture, type StateMachine } from "./state-machine.ts"

/** A command, carried as UTF-8 JSON in an entry's data. */
export type KvCommand =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string }

/**
 * The outcome of applying a command. A malformed command is still committed (the log is not
 * the place to validate), so it yields `{ ok: false }` on every node alike and changes nothing.
 */
export type KvResult =
  | { readonly ok: true; readonly op: "put" | "delete"; readonly key: string; readonly previous: string | undefined }
  | { readonly ok: false; readonly error: string }

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const strictDecoder = new TextDecoder("utf-8", { fatal: true })

/** A key-value command as the bytes `propose` takes (UTF-8 JSON). */
export const encodeKvCommand = (command: KvCommand): Uint8Array => encoder.encode(JSON.stringify(command))

/** Parses a command; a string describing the problem when it is not one. */
export const decodeKvCommand = (data: Uint8Array): KvCommand | string => {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(data))
  } catch {
    return "command is not JSON"
  }
  if (typeof value !== "object" || value === null) return "command is not an object"
  const c = value as Record<string, unknown>
  if (typeof c["key"] !== "string") return "command needs a string key"
  if (c["op"] === "put") {
    return typeof c["value"] === "string" ? { op: "put", key: c["key"], value: c["value"] } : "put needs a string value"
  }
  if (c["op"] === "delete") return { op: "delete", key: c["key"] }
  return "op must be \"put\" or \"delete\""
}

/** A string key-value store. */
export class KvStateMachine implements StateMachine<KvResult> {
  private readonly data = new Map<string, string>()
  /**
   * The pairs of snapshots `validate` accepted, by their bytes: a follower validates a snapshot
   * as it arrives and restores the same bytes right after, and parsing is the bulk of both.
   * Weak, so a snapshot validated and never installed (a stale one) takes its pairs with it.
   */
  private readonly validated = new WeakMap<Uint8Array, ReadonlyArray<readonly [string, string]>>()

  apply(entry: Entry): KvResult {
    const command = decodeKvCommand(entry.data ?? new Uint8Array(0))
    if (typeof command === "string") return { ok: false, error: command }
    const previous = this.data.get(command.key)
    if (command.op === "put") this.data.set(command.key, command.value)
    else this.data.delete(command.key)
    return { ok: true, op: command.op, key: command.key, previous }
  }

  /** The local value: linearizable only through `RaftManager.read`. */
  get(key: string): string | undefined {
    return this.data.get(key)
  }

  get size(): number {
    return this.data.size
  }

  /** The pairs sorted by key, as JSON: equal states give equal snapshots. */
  snapshot(): Uint8Array {
    return joinSlices(this.captureSnapshot())
  }

  /**
   * Copies the keys and the values (strings are immutable, so this is the whole capture) into
   * two flat arrays rather than an array per pair: the copy is the one step that holds the loop
   * for the whole state (3.5-10 ms for 64,000 pairs, `npx tsx bench/tools/snapshot-stall.ts`).
   * Sorting and encoding them happen in the slices.
   */
  captureSnapshot(): SnapshotCapture {
    return new KvSnapshotCapture([...this.data.keys()], [...this.data.values()])
  }

  restore(data: Uint8Array): void {
    const entries = this.validated.get(data) ?? decodeKvSnapshot(data)
    this.validated.delete(data)
    if (typeof entries === "string") throw new Error(`kv snapshot: ${entries}`)
    this.data.clear()
    for (const [key, value] of entries) this.data.set(key, value)
  }

  validate(data: Uint8Array): string | undefined {
    const entries = decodeKvSnapshot(data)
    if (typeof entries === "string") return `kv snapshot: ${entries}`
    this.validated.set(data, entries)
    return undefined
  }
}

/** Pairs a slice of a KV snapshot sorts or encodes: a few milliseconds of work. */
const PAIRS_PER_SLICE = 2048
const EMPTY = new Uint8Array(0)

/**
 * The JSON array of the pairs sorted by key, in slices: first each run of `PAIRS_PER_SLICE`
 * pairs is sorted (a slice each, by index into the copied keys), then each slice merges the
 * runs' next `PAIRS_PER_SLICE` pairs and encodes them.
 */
class KvSnapshotCapture implements SnapshotCapture {
  private readonly runs: Array<Array<number>> = []
  /** Pairs sorted into runs so far. */
  private sorted = 0
  private merge: RunMerge<number> | undefined
  /** Pairs encoded so far. */
  private encoded = 0
  private finished = false

  /** `keys[i]` holds `values[i]`; the keys are unique. */
  constructor(private readonly keys: ReadonlyArray<string>, private readonly values: ReadonlyArray<string>) {}

  next(): Uint8Array | undefined {
    if (this.finished) return undefined
    const { keys, values } = this
    if (this.sorted < keys.length) {
      const from = this.sorted
      const to = Math.min(keys.length, from + PAIRS_PER_SLICE)
      const run = new Array<number>(to - from)
      for (let i = from; i < to; i++) run[i - from] = i
      this.runs.push(run.sort((a, b) => (keys[a]! < keys[b]! ? -1 : 1)))
      this.sorted = to
      return EMPTY
    }
    if (keys.length === 0) {
      this.finished = true
      return encoder.encode("[]")
    }
    const merge = this.merge ??= new RunMerge(this.runs, (i) => keys[i]!)
    const taken: Array<number> = []
    merge.take(PAIRS_PER_SLICE, taken)
    const pairs = taken.map((i) => [keys[i]!, values[i]!])
    const first = this.encoded === 0
    this.encoded += pairs.length
    this.finished = this.encoded === keys.length
    // Each slice's array without its brackets: joined, they are the whole array's JSON.
    const json = JSON.stringify(pairs)
    return encoder.encode((first ? "[" : ",") + json.slice(1, -1) + (this.finished ? "]" : ""))
  }
}

/** The pairs of a snapshot (`snapshot()`'s JSON), or what is wrong with it; empty bytes are the empty state. */
const decodeKvSnapshot = (data: Uint8Array): ReadonlyArray<readonly [string, string]> | string => {
  if (data.length === 0) return []
  let entries: unknown
  try {
    // `fatal`: bytes that are not UTF-8 are refused, not read as U+FFFD.
    entries = JSON.parse(strictDecoder.decode(data))
  } catch (error) {
    return `not UTF-8 JSON (${error instanceof Error ? error.message : String(error)})`
  }
  if (!Array.isArray(entries)) return "not an array of [key, value] pairs"
  for (let i = 0; i < entries.length; i++) {
    const pair: unknown = entries[i]
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
      return `pair ${i} is not [string, string]`
    }
  }
  return entries as ReadonlyArray<readonly [string, string]>
}
