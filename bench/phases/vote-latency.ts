/**
 * Vote round trips, idle and under snapshot load. Two processes run `makeRaftTransport` (both
 * Iroh, or both gRPC). The voter answers every RequestVote with a RequestVoteResponse
 * (election class); the candidate sends votes on a fixed 5 ms cadence and times each round
 * trip. In the load phase it first queues a 20 MB Snapshot (chunked by the transport) and
 * keeps one queued behind the one in flight, so the snapshot stream never goes idle while the
 * votes run. Both sides' event-loop lag is probed for each phase.
 */
import { Duration, Effect, Fiber, Metric } from "effect"
import { performance } from "node:perf_hooks"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { type Msg, PeerProcessFailed, type Role } from "../harness/ipc.ts"
import {
  type BenchMode,
  type ConfigOverrides,
  loopbackConfig,
  meetPeer,
  modeOverrides,
  onReceived,
  parseOverrides,
  startLoopbackNode
} from "../harness/loopback-node.ts"
import { spawnPair } from "../harness/peer-processes.ts"
import { counterDelta, epochNow, machineCoresBusy, machineCpuMark, type ProbeWindow } from "../harness/probe.ts"
import { mbPerSecond, type Summary, summarize } from "../harness/stats.ts"
import { kvSnapshotJson } from "./payloads.ts"

const CANDIDATE = 1
const VOTER = 2
const TERM = 7

interface VotesCommand extends Msg {
  readonly type: "votes"
  readonly count: number
  readonly spacingMs: number
  /** 0: idle phase; otherwise the snapshot size to keep in flight. */
  readonly snapshotBytes: number
  /** How long to let the snapshot transfer run before the first vote. */
  readonly snapshotLeadMs: number
  /** How long to wait for the last responses. */
  readonly drainMs: number
  /**
   * Load phase: at least `count` votes, and on until the candidate has written one whole
   * snapshot, then this long more, so the phase always covers a snapshot's end (the receiver
   * assembles and delivers it) and not only the middle of its stream.
   */
  readonly afterSnapshotWrittenMs: number
  /** What the snapshot holds: a sparse pattern (the default) or a KV store's JSON (`payloads.ts`). */
  readonly snapshotData?: SnapshotData
}

export type SnapshotData = "pattern" | "kv-json"

/** One answered vote: its number, when it was sent and when its answer was received (epoch ms). */
type VoteSample = readonly [seq: number, sentAt: number, answeredAt: number]

interface VotesReply extends Msg {
  readonly type: "votes"
  readonly samples: ReadonlyArray<VoteSample>
  readonly lost: number
  readonly snapshotsQueued: number
}

/** The voter's receive times (epoch ms) by vote number since the last request. */
interface VoteLogReply extends Msg {
  readonly type: "vote-log"
  readonly received: ReadonlyArray<readonly [seq: number, receivedAt: number]>
}

const vote = (seq: number): RaftMessage => ({
  msgType: MessageType.RequestVote,
  from: CANDIDATE,
  to: VOTER,
  term: TERM,
  index: seq,
  logTerm: TERM - 1
})

const nodeArgs = (args: ReadonlyArray<string>): { readonly keyDir: string; readonly overrides: ConfigOverrides } => {
  const [keyDir, overrides] = args
  if (keyDir === undefined) throw new Error("expected <keyDir> [overrides-json]")
  return { keyDir, overrides: parseOverrides(overrides) }
}

export const voterRole: Role = (parent) =>
  Effect.gen(function*() {
    const { keyDir, overrides } = nodeArgs(parent.args)
    const node = yield* startLoopbackNode(VOTER, keyDir, overrides)
    let votes = 0
    let answerFailures = 0
    let snapshots = 0
    let snapshotStreamBytes = 0
    let received: Array<readonly [number, number]> = []
    parent.setCounters(() => ({ votes, answerFailures, snapshots, snapshotStreamBytes }))
    yield* meetPeer(parent, node)
    // Plain callbacks rather than an `Effect.gen` per batch (see bench/phases/transport-throughput.ts):
    // only the answers are effects.
    const answer = (to: number, sent: RaftMessage) =>
      Effect.exit(node.transport.send(to, sent)).pipe(Effect.map((exit) => {
        if (exit._tag === "Failure") answerFailures++
      }))
    yield* onReceived(node, (batch, now) => {
      const answers: Array<Effect.Effect<void>> = []
      for (const m of batch) {
        if (m.msgType === MessageType.RequestVote) {
          votes++
          received.push([m.index ?? -1, now])
          answers.push(answer(m.from, {
            msgType: MessageType.RequestVoteResponse,
            from: VOTER,
            to: m.from,
            term: m.term ?? 0,
            index: m.index ?? 0,
            reject: false
          }))
        } else if (m.msgType === MessageType.Snapshot) {
          snapshots++
        }
      }
      return answers.length === 0 ? undefined : Effect.all(answers, { discard: true })
    })
    yield* Effect.forkScoped(
      Effect.gen(function*() {
        while (true) {
          yield* parent.next("vote-log")
          const reply: VoteLogReply = { type: "vote-log", received }
          received = []
          yield* parent.send(reply)
        }
      })
    )
    // Bytes read off the snapshot stream, sampled: shows the transfer progressing mid-phase.
    const snapshotBytes = Metric.withAttributes(M.bytesReceived, {
      peer: String(CANDIDATE),
      class: "snapshot",
      transport: node.config.mode === "grpc" ? "grpc" : "iroh"
    })
    yield* Effect.forkScoped(
      Effect.gen(function*() {
        while (true) {
          snapshotStreamBytes = (yield* Metric.value(snapshotBytes)).count
          yield* Effect.sleep("20 millis")
        }
      })
    )
  })

export const candidateRole: Role = (parent) =>
  Effect.gen(function*() {
    const { keyDir, overrides } = nodeArgs(parent.args)
    const node = yield* startLoopbackNode(CANDIDATE, keyDir, overrides)
    const pending = new Map<number, number>()
    let samples: Array<VoteSample> = []
    let responses = 0
    let stray = 0
    parent.setCounters(() => ({ responses, stray, pending: pending.size }))
    yield* meetPeer(parent, node)

    yield* onReceived(node, (batch, now) => {
      for (const m of batch) {
        if (m.msgType !== MessageType.RequestVoteResponse) continue
        const seq = m.index ?? -1
        const sentAt = pending.get(seq)
        if (sentAt === undefined) {
          stray++
          continue
        }
        pending.delete(seq)
        responses++
        samples.push([seq, sentAt, now])
      }
    })

    let seq = 0
    while (true) {
      const command = yield* parent.next<VotesCommand>("votes")
      samples = []
      pending.clear()
      let snapshotsQueued = 0
      let feeder: Fiber.Fiber<unknown, unknown> | undefined
      if (command.snapshotBytes > 0) {
        const data = command.snapshotData === "kv-json" ? kvSnapshotJson(command.snapshotBytes) : new Uint8Array(command.snapshotBytes)
        if (command.snapshotData !== "kv-json") for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff
        const snapshot: RaftMessage = {
          msgType: MessageType.Snapshot,
          from: CANDIDATE,
          to: VOTER,
          term: TERM,
          snapshot: { data, metadata: { index: 100_000, term: TERM - 1, confState: { voters: [CANDIDATE, VOTER] } } }
        }
        const queueSnapshot = Effect.andThen(node.transport.send(VOTER, snapshot), Effect.sync(() => snapshotsQueued++))
        yield* queueSnapshot
        // Keep one snapshot waiting behind the one being written: the stream never idles.
        feeder = yield* Effect.forkChild(
          Effect.gen(function*() {
            while (true) {
              yield* Effect.sleep("5 millis")
              const status = yield* node.transport.peerStatus(VOTER)
              if ((status.queued[PriorityClass.Snapshot] ?? 0) === 0) yield* queueSnapshot
            }
          }),
          { startImmediately: true }
        )
        yield* Effect.sleep(Duration.millis(command.snapshotLeadMs))
      }
      const t0 = performance.now()
      // The feeder queues the third snapshot once the writer has taken the second: the first is written.
      const firstWritten = () => command.snapshotBytes === 0 || snapshotsQueued >= 3
      let votesAfterWritten = command.snapshotBytes === 0 ? 0 : Math.ceil(command.afterSnapshotWrittenMs / command.spacingMs)
      for (let i = 0; i < command.count || !firstWritten() || votesAfterWritten-- > 0; i++) {
        const wait = t0 + i * command.spacingMs - performance.now()
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        seq++
        pending.set(seq, epochNow())
        yield* node.transport.send(VOTER, vote(seq))
      }
      const drainUntil = performance.now() + command.drainMs
      while (pending.size > 0 && performance.now() < drainUntil) yield* Effect.sleep("5 millis")
      if (feeder !== undefined) yield* Fiber.interrupt(feeder)
      const reply: VotesReply = { type: "votes", samples, lost: pending.size, snapshotsQueued }
      pending.clear()
      yield* parent.send(reply)
    }
  })

export interface VotePhaseResult {
  readonly rtt: Summary
  /** Candidate `send` to the vote leaving the voter's `receiveBatch`. */
  readonly forward: Summary
  /** Voter's `receiveBatch` to the answer leaving the candidate's `receiveBatch` (includes the voter's turnaround). */
  readonly back: Summary
  readonly lost: number
  readonly snapshotsQueued: number
  /** Snapshot-stream bytes the voter read during the phase, as MB/s. */
  readonly snapshotMbPerSec: number
  readonly snapshotsDelivered: number
  /** Cores busy machine-wide during the phase (all processes). */
  readonly machineCores: number
  readonly candidate: ProbeWindow
  readonly voter: ProbeWindow
}

export interface VoteLatencyResult {
  readonly mode: BenchMode
  readonly snapshotChunkBytes: number
  /** The measured transport's snapshot pace and election cap (bytes/s, 0 = none), as decoded. */
  readonly snapshotBytesPerSec: number
  readonly snapshotElectionBytesPerSec: number
  readonly idle: VotePhaseResult
  readonly load: VotePhaseResult
  readonly votes: number
  readonly spacingMs: number
  readonly snapshotBytes: number
}

/** The vote phase of `npm run bench`: votes per phase, their spacing, the snapshot in flight. */
export const DEFAULT_VOTES = { votes: 1000, spacingMs: 5, snapshotBytes: 20_000_000 } as const

export interface VoteLatencyOptions {
  readonly keyDir: string
  /** Both nodes' mode: "iroh" (the default) or "grpc". */
  readonly mode?: BenchMode
  /** `batching.snapshot_chunk_bytes` for both nodes; absent: the shipped default. */
  readonly snapshotChunkBytes?: number
  /** Any other `[transport.batching]` settings for both nodes. */
  readonly batching?: Readonly<Record<string, number>>
  readonly votes: number
  readonly spacingMs: number
  readonly snapshotBytes: number
  readonly snapshotData?: SnapshotData
  /** `[transport.compression]` for both nodes; absent: the shipped default. */
  readonly compression?: Readonly<Record<string, unknown>>
}

export const runVoteLatency = (options: VoteLatencyOptions): Effect.Effect<VoteLatencyResult, PeerProcessFailed> =>
  Effect.scoped(
    Effect.gen(function*() {
      const mode = options.mode ?? "iroh"
      const overrides: ConfigOverrides = {
        ...modeOverrides(mode),
        batching: {
          ...options.batching,
          ...(options.snapshotChunkBytes === undefined ? {} : { snapshot_chunk_bytes: options.snapshotChunkBytes })
        },
        ...(options.compression === undefined ? {} : { compression: options.compression })
      }
      const [voter, candidate] = yield* spawnPair("vote-voter", "vote-candidate", [options.keyDir, JSON.stringify(overrides)])
      // The chunk size and paces the nodes run with, defaults included, as their own config decodes them.
      const { batching } = yield* loopbackConfig(1, options.keyDir, overrides).pipe(
        Effect.mapError((e) => new PeerProcessFailed({ role: "orchestrator", reason: e.message, output: "" }))
      )
      const snapshotChunkBytes = batching.snapshot_chunk_bytes
      const grpc = mode === "grpc"
      const snapshotBytesPerSec = grpc ? batching.grpc_snapshot_bytes_per_sec : batching.iroh_snapshot_bytes_per_sec
      const snapshotElectionBytesPerSec = grpc
        ? batching.grpc_snapshot_election_bytes_per_sec
        : batching.iroh_snapshot_election_bytes_per_sec

      const phase = (count: number, snapshotBytes: number) =>
        Effect.gen(function*() {
          const command: VotesCommand = {
            type: "votes",
            count,
            spacingMs: options.spacingMs,
            snapshotBytes,
            snapshotLeadMs: 100,
            drainMs: 5_000,
            afterSnapshotWrittenMs: 500,
            snapshotData: options.snapshotData ?? "pattern"
          }
          const m0 = machineCpuMark()
          yield* voter.probeStart
          yield* candidate.probeStart
          const reply = yield* candidate.request<VotesReply>(command, 120_000)
          const cw = yield* candidate.probeStop
          const vw = yield* voter.probeStop
          const machineCores = machineCoresBusy(m0, machineCpuMark())
          const log = yield* voter.request<VoteLogReply>({ type: "vote-log" }, 5_000)
          const receivedAt = new Map(log.received)
          const forward: Array<number> = []
          const back: Array<number> = []
          for (const [seq, sentAt, answeredAt] of reply.samples) {
            const at = receivedAt.get(seq)
            if (at === undefined) continue
            forward.push(at - sentAt)
            back.push(answeredAt - at)
          }
          return {
            rtt: summarize(reply.samples.map(([, sentAt, answeredAt]) => answeredAt - sentAt)),
            forward: summarize(forward),
            back: summarize(back),
            lost: reply.lost,
            snapshotsQueued: reply.snapshotsQueued,
            snapshotMbPerSec: mbPerSecond(counterDelta(vw, "snapshotStreamBytes"), vw.ms),
            snapshotsDelivered: counterDelta(vw, "snapshots"),
            machineCores,
            candidate: cw,
            voter: vw
          } satisfies VotePhaseResult
        })

      // Warm-up: both connections (candidate -> voter, voter -> candidate) and the JIT.
      yield* phase(50, 0)
      const idle = yield* phase(options.votes, 0)
      const load = yield* phase(options.votes, options.snapshotBytes)
      return {
        mode,
        snapshotChunkBytes,
        snapshotBytesPerSec,
        snapshotElectionBytesPerSec,
        idle,
        load,
        votes: options.votes,
        spacingMs: options.spacingMs,
        snapshotBytes: options.snapshotBytes
      }
    })
  )
