/**
 * A Raft node's storage writes, beside its loop: the loop hands each round's new entries and
 * hard state to `stage` and goes on reading messages, answering clients and replicating while
 * the write is in flight (on libuv's pool; a follower's small append in line, see
 * `file-storage.ts`). One write is in flight at a time; everything staged meanwhile goes into
 * the next one (group commit), so under load each fsync carries every entry that arrived while
 * the previous one ran.
 *
 * What waits for a write is what promises it, as etcd raft's asynchronous storage writes do:
 *
 * - messages that acknowledge persisted state (append and vote responses) are held until every
 *   write staged so far is durable, then released in order (Figure 2, "respond to RPCs only
 *   after updating stable storage");
 * - a round that changes the term or the vote holds all its messages: a candidate must not ask
 *   for votes, nor a node grant one, before the term and vote are on disk;
 * - a leader's appends, heartbeats and snapshots go out at once: it replicates in parallel with
 *   its own write and counts itself in a quorum only once the write completes (thesis §10.2.1),
 *   which `onDurable` reports to the core.
 *
 * Snapshots (installed from a leader, or taken here once their file is staged) are rare and
 * rewrite files the appends use: they drain the pipeline and are written in line (`writeNow`).
 */
import { Effect, Exit, Fiber, type Scope } from "effect"
import { type Entry, MessageType, type RaftMessage } from "../message/types.ts"
import type { StorageError } from "./errors.ts"
import type { HardState, RaftStorage, WriteBatch, WriteOptions } from "./storage.ts"

/** A round that sent messages: its write must not hold the loop the transport's writers need. */
const BESIDE_SENDS: WriteOptions = { mayHoldLoop: false }
/** A round that sent nothing: its answers wait for the write, so it may hold the loop. */
const NOTHING_WAITS: WriteOptions = { mayHoldLoop: true }

/** Messages that promise nothing about this node's disk: a leader's replication traffic, forwards, reads. */
const sendsAtOnce = (m: RaftMessage): boolean => {
  switch (m.msgType) {
    case MessageType.Append:
    case MessageType.Heartbeat:
    case MessageType.Snapshot:
    case MessageType.HeartbeatResponse:
    case MessageType.TimeoutNow:
    case MessageType.Propose:
    case MessageType.ReadIndex:
    case MessageType.ReadIndexResponse:
    case MessageType.RequestPreVote:
      return true
    default:
      return false
  }
}

/** What one round hands to storage. */
export interface Staged {
  readonly entries: ReadonlyArray<Entry>
  /** The core's hard state this round (undefined when unchanged). */
  readonly hardState: HardState | undefined
  readonly messages: ReadonlyArray<RaftMessage>
  /** The log's last index and its term once this round's entries are in it. */
  readonly lastIndex: number
  readonly lastTerm: number
}

interface Batch {
  entries: Array<Entry>
  /** Messages released once this batch (and every one before it) is durable. */
  readonly after: Array<RaftMessage>
  lastIndex: number
  lastTerm: number
  /** Something to write (entries, or a term/vote change), not only messages waiting on an earlier batch. */
  writes: boolean
}

interface InFlight {
  readonly seq: number
  readonly batch: Batch
  readonly fiber: Fiber.Fiber<Exit.Exit<void, StorageError>>
}

export interface WritePipelineOptions {
  readonly storage: RaftStorage
  /** Where the write fibers run (the node's scope: they end with it). */
  readonly scope: Scope.Scope
  /** The hard state on disk when the node starts. */
  readonly hardState: HardState
  /** Tells the node a write finished; it calls `completed` with the same arguments from its loop. */
  readonly notify: (seq: number, exit: Exit.Exit<void, StorageError>) => Effect.Effect<void>
  /** The log is durable up to `index` (whose entry has `term`). */
  readonly onDurable: (index: number, term: number) => void
}

export class WritePipeline {
  private seq = 0
  private inFlight: InFlight | undefined
  private next: Batch | undefined
  /** The latest hard state staged: every write carries it, so the commit hint rides along for free. */
  private hardState: HardState

  constructor(private readonly options: WritePipelineOptions) {
    this.hardState = options.hardState
  }

  /** A write is in flight or waiting: messages that promise durability are being held. */
  get busy(): boolean {
    return this.inFlight !== undefined || this.next !== undefined
  }

  /**
   * Takes one round's entries, hard state and messages, and returns the messages to send now.
   * The caller sends them, then calls `kick` to start the write.
   */
  stage(round: Staged): Effect.Effect<ReadonlyArray<RaftMessage>> {
    return Effect.suspend(() => {
      const termOrVote = round.hardState !== undefined &&
        (round.hardState.term !== this.hardState.term || round.hardState.vote !== this.hardState.vote)
      if (round.hardState !== undefined) this.hardState = round.hardState
      const writes = termOrVote || round.entries.length > 0
      if (!writes && !this.busy) return Effect.succeed(round.messages)
      const now: Array<RaftMessage> = []
      const held: Array<RaftMessage> = []
      for (const m of round.messages) (!termOrVote && sendsAtOnce(m) ? now : held).push(m)
      if (writes) {
        const batch = this.next ??= { entries: [], after: [], lastIndex: 0, lastTerm: 0, writes: false }
        mergeEntries(batch.entries, round.entries)
        batch.lastIndex = round.lastIndex
        batch.lastTerm = round.lastTerm
        batch.writes = true
        batch.after.push(...held)
      } else {
        // Nothing new to write, but what they acknowledge may still be in a write: wait for the last one.
        ;(this.next ?? this.inFlight!.batch).after.push(...held)
      }
      return Effect.succeed(now)
    })
  }

  /**
   * The loop's half of a write's completion: fails with the write's error (the node stops), or
   * reports durability and returns the messages that waited for it. A completion already taken
   * by `drain` is ignored.
   */
  completed(seq: number, exit: Exit.Exit<void, StorageError>): Effect.Effect<ReadonlyArray<RaftMessage>, StorageError> {
    return Effect.suspend(() => {
      const current = this.inFlight
      if (current === undefined || current.seq !== seq) return Effect.succeed([])
      this.inFlight = undefined
      if (Exit.isFailure(exit)) return Effect.failCause(exit.cause)
      this.options.onDurable(current.batch.lastIndex, current.batch.lastTerm)
      // A batch that only held messages (the next one had nothing to write) releases them too.
      const released = current.batch.after
      if (this.next !== undefined && !this.next.writes) {
        released.push(...this.next.after)
        this.next = undefined
      }
      return Effect.succeed(released)
    })
  }

  /**
   * Starts the next write when none is in flight (the loop calls this once its round is staged
   * and its messages sent). `afterSends`: the round handed messages to the transport, whose
   * writers run once the loop yields; the write then starts behind them, so a leader's appends
   * are written to the network before its own log write is submitted, a submission that holds
   * the loop. A round that sent nothing (a follower's, whose answer waits for this write)
   * submits at once, and lets the storage hold the loop for the write (`mayHoldLoop`): nothing
   * else of the node waits on it.
   */
  kick(afterSends: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      const batch = this.next
      if (this.inFlight !== undefined || batch === undefined || !batch.writes) return Effect.void
      this.next = undefined
      const seq = ++this.seq
      const write = this.options.storage.write(this.writeBatchOf(batch), afterSends ? BESIDE_SENDS : NOTHING_WAITS).pipe(
        Effect.exit,
        Effect.tap((exit) => this.options.notify(seq, exit))
      )
      return Effect.map(Effect.forkIn(write, this.options.scope, { startImmediately: !afterSends }), (fiber) => {
        this.inFlight = { seq, batch, fiber }
      })
    })
  }

  /**
   * Waits for the write in flight and writes whatever is waiting, in line; returns every message
   * held so far. Before a snapshot, which must follow every earlier write on disk.
   */
  get drain(): Effect.Effect<ReadonlyArray<RaftMessage>, StorageError> {
    return Effect.gen({ self: this }, function*() {
      const released: Array<RaftMessage> = []
      const current = this.inFlight
      if (current !== undefined) {
        // Its completion also reaches the loop through `notify`; `completed` ignores it there.
        released.push(...(yield* this.completed(current.seq, yield* Fiber.join(current.fiber))))
      }
      const next = this.next
      if (next !== undefined) {
        this.next = undefined
        if (next.writes) {
          yield* this.options.storage.write(this.writeBatchOf(next))
          this.options.onDurable(next.lastIndex, next.lastTerm)
        }
        released.push(...next.after)
      }
      return released
    })
  }

  /** Writes `batch` now (after `drain`), then reports the log durable up to `lastIndex`. */
  writeNow(batch: WriteBatch, lastIndex: number, lastTerm: number): Effect.Effect<void, StorageError> {
    return Effect.suspend(() => {
      if (batch.hardState !== undefined) this.hardState = batch.hardState
      return Effect.map(this.options.storage.write(batch), () => this.options.onDurable(lastIndex, lastTerm))
    })
  }

  private writeBatchOf(batch: Batch): WriteBatch {
    return batch.entries.length > 0 ? { entries: batch.entries, hardState: this.hardState } : { hardState: this.hardState }
  }
}

/**
 * Appends `add` to `acc`, where `add` may start at or below `acc`'s end: a follower replaced a
 * conflicting suffix (§5.3), so the replaced entries are dropped (storage truncates what of
 * them an earlier write already put on disk).
 */
const mergeEntries = (acc: Array<Entry>, add: ReadonlyArray<Entry>): void => {
  const first = add[0]
  if (first === undefined) return
  const base = acc[0]?.index
  if (base !== undefined && first.index <= base + acc.length - 1) acc.length = Math.max(0, first.index - base)
  for (const e of add) acc.push(e)
}
