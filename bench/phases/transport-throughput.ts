/**
 * Transport message rate: two processes, each running `makeRaftTransport` (both Iroh or both
 * gRPC, loopback, shipped defaults). The sender calls `send` as fast as it can while keeping
 * its outbound queue below half its capacity (it reads the depth from `peerStatus` before
 * every burst and sleeps 1 ms when the queue is that full, so the writer always has a full
 * batch waiting and nothing is dropped; a `MessageDropped` is still counted if it happens).
 * The receiver counts with `receiveBatch(1000)`. The rate is the receiver's count over a
 * steady window.
 *
 * Appends carry the shipped bench pattern by default, or one of the payload kinds of
 * `payloads.ts` (the compression phase), with config overrides for both nodes.
 */
import { Effect, Metric } from "effect"
import { encodeMessage } from "../../src/message/codec.ts"
import { FRAME_HEADER_LENGTH } from "../../src/message/framing.ts"
import { PriorityClass } from "../../src/message/priority.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { type FirstMsg, type PeerProcessFailed, type Role, runFromStartToStop } from "../harness/ipc.ts"
import {
  type BenchMode,
  type ConfigOverrides,
  meetPeer,
  modeOverrides,
  onReceived,
  parseMode,
  parseOverrides,
  startLoopbackNode
} from "../harness/loopback-node.ts"
import { type PayloadKind, payloadPool } from "./payloads.ts"
import { spawnPair } from "../harness/peer-processes.ts"
import { counterDelta, type ProbeWindow } from "../harness/probe.ts"
import { perSecond } from "../harness/stats.ts"
import { type FlowOptions, measureFlow, quietMedian } from "../harness/windows.ts"

export type ThroughputKind = "append" | "heartbeat"

const SENDER = 1
const RECEIVER = 2
const APPEND_DATA_BYTES = 100
const BURST = 256

const appendData = new Uint8Array(APPEND_DATA_BYTES).map((_, i) => (i * 7) & 0xff)

/** The message of each kind, numbered `seq` (index or commit), as a Raft leader would make it. */
export const benchMessage = (kind: ThroughputKind, seq: number, data: Uint8Array = appendData): RaftMessage =>
  kind === "append"
    ? {
      msgType: MessageType.Append,
      from: SENDER,
      to: RECEIVER,
      term: 3,
      logTerm: 3,
      index: seq,
      commit: seq,
      entries: [{ term: 3, index: seq + 1, data }]
    }
    : { msgType: MessageType.Heartbeat, from: SENDER, to: RECEIVER, term: 3, commit: seq }

/** The entry data appends carry: the fixed pattern, or a pool of one payload kind (cycled). */
const dataPool = (payload: PayloadKind | undefined): ReadonlyArray<Uint8Array> =>
  payload === undefined ? [appendData] : payloadPool(payload)

/** Mean framed size (length prefix + protobuf) of the messages of the kind, uncompressed. */
const framedBytesOf = (kind: ThroughputKind, payload?: PayloadKind): number => {
  const pool = dataPool(payload)
  let total = 0
  for (const data of pool) total += FRAME_HEADER_LENGTH + encodeMessage(benchMessage(kind, 1_000_000, data)).length
  return total / pool.length
}

const parseArgs = (args: ReadonlyArray<string>) => {
  const [keyDir, kind, mode, payload, overrides] = args
  if (keyDir === undefined || (kind !== "append" && kind !== "heartbeat")) {
    throw new Error(`expected <keyDir> <append|heartbeat> [iroh|grpc] [payload] [overrides-json], got ${JSON.stringify(args)}`)
  }
  const payloadKind = payload === undefined || payload === "" ? undefined : payload as PayloadKind
  return { keyDir, kind: kind as ThroughputKind, mode: parseMode(mode), payload: payloadKind, overrides: parseOverrides(overrides) }
}

export const throughputReceiverRole: Role = (parent) =>
  Effect.gen(function*() {
    const { keyDir, kind, mode, overrides } = parseArgs(parent.args)
    const node = yield* startLoopbackNode(RECEIVER, keyDir, { ...modeOverrides(mode), ...overrides })
    const expected = kind === "append" ? MessageType.Append : MessageType.Heartbeat
    let msgs = 0
    let batches = 0
    let unexpected = 0
    parent.setCounters(() => ({ msgs, batches, unexpected }))
    yield* meetPeer(parent, node)
    // A plain callback, like the raw receiver's counting loop: an `Effect.gen` per batch here
    // kept each batch alive across scavenges (20 MB copied per scavenge, 25-45 ms pauses, about
    // 10% of the receiver's time in one run), a cost of this consumer, not of the transport.
    yield* onReceived(node, (batch) => {
      if (msgs === 0) Effect.runFork(parent.send({ type: "first" } as FirstMsg))
      for (const m of batch) if (m.msgType !== expected) unexpected++
      msgs += batch.length
      batches++
    })
  })

export const throughputSenderRole: Role = (parent) =>
  Effect.gen(function*() {
    const { keyDir, kind, mode, payload, overrides } = parseArgs(parent.args)
    const node = yield* startLoopbackNode(SENDER, keyDir, { ...modeOverrides(mode), ...overrides })
    const pool = dataPool(payload)
    const cls = kind === "append" ? PriorityClass.Append : PriorityClass.Heartbeat
    const capacity = node.config.queues[kind].capacity
    const highWater = Math.max(1, Math.floor(capacity / 2))
    const batchMetric = Metric.withAttributes(M.batchSize, { class: kind, transport: mode === "grpc" ? "grpc" : "iroh" })
    let sent = 0
    let rejected = 0
    let backoffs = 0
    let writes = 0
    let written = 0
    let depth = 0
    parent.setCounters(() => ({ sent, rejected, backoffs, writes, written, depth }))
    yield* meetPeer(parent, node)
    yield* runFromStartToStop(parent, (running) =>
      Effect.gen(function*() {
        let seq = 1
        while (running()) {
          const status = yield* node.transport.peerStatus(RECEIVER)
          const batchState = yield* Metric.value(batchMetric)
          writes = batchState.count
          written = batchState.sum
          depth = status.queued[cls] ?? 0
          const room = Math.min(BURST, highWater - depth)
          if (room <= 0) {
            backoffs++
            yield* Effect.sleep("1 millis")
            continue
          }
          for (let i = 0; i < room; i++) {
            const data = pool[seq % pool.length]!
            const outcome = yield* Effect.exit(node.transport.send(RECEIVER, benchMessage(kind, seq++, data)))
            if (outcome._tag === "Failure") {
              rejected++
              break
            }
            sent++
          }
          yield* Effect.yieldNow
        }
      }))
    yield* parent.send({ type: "stop" })
  })

export interface ThroughputResult {
  readonly kind: ThroughputKind
  readonly mode: BenchMode
  /** Median over the windows without background load (all windows if none was quiet). */
  readonly msgsPerSec: number
  /** Each window's rate, and the background load (cores) during it. */
  readonly windows: ReadonlyArray<{ readonly msgsPerSec: number; readonly backgroundCores: number }>
  /** Framed payload (length prefix + protobuf) MB/s, MB = 10^6 B. */
  readonly mbPerSec: number
  readonly framedBytesPerMessage: number
  readonly windowMs: number
  readonly received: number
  readonly sentInWindow: number
  readonly rejectedInWindow: number
  readonly backoffsInWindow: number
  /** Mean messages per link write in the window (the writer's batch size). */
  readonly meanBatch: number
  readonly writesPerSec: number
  readonly unexpected: number
  /** Cores busy machine-wide during the window (all processes). */
  readonly machineCores: number
  readonly sender: ProbeWindow
  readonly receiver: ProbeWindow
}

export interface ThroughputOptions extends FlowOptions {
  readonly kind: ThroughputKind
  /** Both nodes' mode: "iroh" (the default) or "grpc". */
  readonly mode?: BenchMode
  readonly keyDir: string
  /** Append entry data of this kind instead of the fixed pattern. */
  readonly payload?: PayloadKind
  /** Config tables for both nodes, on top of the mode's. */
  readonly overrides?: ConfigOverrides
}

export const runTransportThroughput = (options: ThroughputOptions): Effect.Effect<ThroughputResult, PeerProcessFailed> =>
  Effect.scoped(
    Effect.gen(function*() {
      const mode = options.mode ?? "iroh"
      const [receiver, sender] = yield* spawnPair("transport-receiver", "transport-sender", [
        options.keyDir,
        options.kind,
        mode,
        options.payload ?? "",
        JSON.stringify(options.overrides ?? {})
      ])
      const { receiver: rw, sender: sw, ...measured } = yield* measureFlow(receiver, sender, options)
      const framed = framedBytesOf(options.kind, options.payload)
      const writes = counterDelta(sw, "writes")
      const windows = measured.windows.map((w) => ({
        msgsPerSec: perSecond(w.deltas[0]!["msgs"] ?? 0, w.ms),
        backgroundCores: w.backgroundCores
      }))
      const msgsPerSec = quietMedian(windows, (w) => w.msgsPerSec)
      return {
        kind: options.kind,
        mode,
        msgsPerSec,
        windows,
        mbPerSec: (msgsPerSec * framed) / 1e6,
        framedBytesPerMessage: framed,
        windowMs: rw.ms,
        received: counterDelta(rw, "msgs"),
        sentInWindow: counterDelta(sw, "sent"),
        rejectedInWindow: counterDelta(sw, "rejected"),
        backoffsInWindow: counterDelta(sw, "backoffs"),
        meanBatch: writes > 0 ? counterDelta(sw, "written") / writes : Number.NaN,
        writesPerSec: perSecond(writes, sw.ms),
        unexpected: rw.end.counters["unexpected"] ?? 0,
        machineCores: measured.machineCores,
        sender: sw,
        receiver: rw
      }
    })
  )
