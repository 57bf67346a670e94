import type { RaftMessage, Snapshot } from "./types.ts"

/**
 * The chunks of a snapshot message, made one at a time as the writer asks for them: messages
 * of at most `chunkBytes` of snapshot data each (asked again for each chunk when a function:
 * the receiver reassembles by offset, so chunks of one transfer may differ in size). Built all at once, a 20 MB snapshot in 4 KiB
 * chunks is ~4,900 messages and 2.5-6 ms of main-thread time before the first write (votes
 * wait), then garbage that outlives the young generation.
 */
export function* snapshotChunks(
  message: RaftMessage,
  chunkBytes: number | (() => number),
  transferId: number
): Generator<RaftMessage> {
  const snapshot = message.snapshot
  const data = snapshot?.data ?? new Uint8Array(0)
  const totalSize = data.length
  let offset = 0
  do {
    const end = Math.min(totalSize, offset + (typeof chunkBytes === "number" ? chunkBytes : chunkBytes()))
    const chunk: Snapshot = {
      data: data.subarray(offset, end),
      ...(snapshot?.metadata !== undefined ? { metadata: snapshot.metadata } : {}),
      offset,
      totalSize,
      done: end === totalSize,
      transferId
    }
    yield { ...message, snapshot: chunk }
    offset = end
  } while (offset < totalSize)
}

export type AssemblyResult =
  | { readonly _tag: "Pending" }
  | { readonly _tag: "Complete"; readonly message: RaftMessage }
  | { readonly _tag: "Broken"; readonly reason: string }
  /** The node's snapshot memory is spent: the transfer is abandoned (the sender retries). */
  | { readonly _tag: "OverBudget"; readonly reason: string }

/**
 * Where the memory of snapshots under way comes from (`inbound/snapshot-budget.ts`): one
 * budget per node, one transfer per peer at a time.
 */
export interface SnapshotMemory {
  /** A transfer of `owner` starts; another transfer of the same peer under way is abandoned. */
  readonly begin: (owner: SnapshotAssembler) => void
  /** Takes `bytes` more for `owner`; false when the node's budget cannot give them. */
  readonly reserve: (owner: SnapshotAssembler, bytes: number) => boolean
  /** Gives back everything `owner` holds (its transfer ended, one way or another). */
  readonly releaseAll: (owner: SnapshotAssembler) => void
}

/** The first buffer of a transfer; it doubles as chunks arrive, never past the announced size. */
const INITIAL_BUFFER_BYTES = 64 * 1024

/**
 * Reassembles the chunks of one snapshot stream. Chunks of a transfer arrive in order on one
 * stream; a gap, an oversize total or a new transfer starting before the last finished
 * abandons the partial one, which the sender retries from the start.
 *
 * Memory is taken as data arrives, not as announced: a first chunk that announces 1 GiB costs
 * its own bytes. The buffer doubles as it fills (each byte is copied at most about twice; the
 * largest copy, half the snapshot, takes ~1 ms per 10 MB), and each growth is reserved from
 * the node's `SnapshotMemory` first.
 */
export class SnapshotAssembler {
  private transferId = -1
  private totalSize = 0
  private buffer: Uint8Array | undefined = undefined
  private received = 0
  /** Transfers abandoned because a new one started before they finished. */
  abandoned = 0
  /** When the transfer last received data, for the budget's eviction of stalled ones. */
  lastProgressAt = 0

  constructor(
    private readonly maxBytes: number,
    readonly peer: number,
    private readonly memory: SnapshotMemory,
    private readonly now: () => number
  ) {}

  /** True while a transfer is under way (its first chunk arrived, its last did not). */
  get inProgress(): boolean {
    return this.transferId !== -1
  }

  /** Bytes received of the transfer under way. */
  get receivedBytes(): number {
    return this.received
  }

  push(message: RaftMessage): AssemblyResult {
    const s = message.snapshot
    // Not chunked by us (or an empty snapshot): it is already whole.
    if (s === undefined || !s.totalSize) return { _tag: "Complete", message }
    if (s.totalSize > this.maxBytes) {
      return this.broken(`snapshot of ${s.totalSize} bytes exceeds max_snapshot_bytes ${this.maxBytes}`)
    }
    const offset = s.offset ?? 0
    const transferId = s.transferId ?? 0
    if (offset === 0) {
      if (this.transferId !== -1) this.abandoned++
      this.reset()
      this.memory.begin(this)
      this.transferId = transferId
      this.totalSize = s.totalSize
    } else if (transferId !== this.transferId || offset !== this.received) {
      return this.broken(`chunk at ${offset} out of sequence`)
    }
    if (s.totalSize !== this.totalSize) return this.broken("chunk size total changed mid-transfer")
    const end = this.received + s.data.length
    if (end > s.totalSize) return this.broken("chunks exceed the announced size")
    if (!this.ensureRoom(end)) {
      this.reset()
      return { _tag: "OverBudget", reason: `node snapshot memory (max_snapshot_receive_bytes) is spent at ${end} bytes` }
    }
    this.buffer!.set(s.data, this.received)
    this.received = end
    this.lastProgressAt = this.now()
    if (!s.done) return { _tag: "Pending" }
    if (this.received !== s.totalSize) return this.broken(`snapshot ended at ${this.received} of ${s.totalSize} bytes`)
    const data = this.buffer!.length === this.received ? this.buffer! : this.buffer!.subarray(0, this.received)
    this.reset()
    const whole: Snapshot = s.metadata !== undefined ? { data, metadata: s.metadata } : { data }
    return { _tag: "Complete", message: { ...message, snapshot: whole } }
  }

  /** Ends the transfer under way, if any (the stream ended or the budget evicted it). */
  abort(): void {
    this.reset()
  }

  private ensureRoom(end: number): boolean {
    const capacity = this.buffer?.length ?? 0
    if (end <= capacity) return true
    const grown = Math.min(this.totalSize, Math.max(end, 2 * capacity, INITIAL_BUFFER_BYTES))
    if (!this.memory.reserve(this, grown - capacity)) return false
    const buffer = new Uint8Array(grown)
    if (this.buffer !== undefined) buffer.set(this.buffer.subarray(0, this.received), 0)
    this.buffer = buffer
    return true
  }

  private broken(reason: string): AssemblyResult {
    this.reset()
    return { _tag: "Broken", reason }
  }

  private reset(): void {
    if (this.transferId !== -1 || this.buffer !== undefined) this.memory.releaseAll(this)
    this.transferId = -1
    this.totalSize = 0
    this.buffer = undefined
    this.received = 0
  }
}

/** No node-wide budget: every reservation succeeds (tests, single-stream tools). */
export const unlimitedSnapshotMemory: SnapshotMemory = {
  begin: () => undefined,
  reserve: () => true,
  releaseAll: () => undefined
}
