/**
 * Compression on Iroh (wire version 2), measured as ratios within one run:
 * - appends of each payload kind (`payloads.ts`), compression on and off, against the raw
 *   ceiling measured right before and after them: the ceiling's message rate at the same
 *   uncompressed frame size is its MB/s over the mean framed bytes per message;
 * - for JSON, the compressed ceiling (`compressed-ceiling.ts`) between the same raw runs: the
 *   message rate that the binding and zstd alone allow, against which the target is judged;
 * - the transfer time of one 20 MB KV snapshot (JSON), on and off, alternating pairs of
 *   processes (send to delivery, both clocks on this machine).
 * Vote latency under that snapshot is the vote phase run with `snapshotData: "kv-json"`.
 */
import { Effect } from "effect"
import { join } from "node:path"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import { type Msg, PeerProcessFailed, type Role } from "../harness/ipc.ts"
import { type ConfigOverrides, meetPeer, onReceived, parseOverrides, startLoopbackNode } from "../harness/loopback-node.ts"
import { spawnPair } from "../harness/peer-processes.ts"
import { epochNow } from "../harness/probe.ts"
import { median } from "../harness/stats.ts"
import type { FlowOptions } from "../harness/windows.ts"
import { type CompressedCeilingVariant, runCompressedCeiling } from "./compressed-ceiling.ts"
import { kvSnapshotJson, type PayloadKind, payloadKinds } from "./payloads.ts"
import { runRawCeiling } from "./raw-ceiling.ts"
import { runTransportThroughput } from "./transport-throughput.ts"

export const COMPRESSION_ON: ConfigOverrides = { compression: { algorithm: "zstd" } }
export const COMPRESSION_OFF: ConfigOverrides = { compression: { algorithm: "none" } }

/** Kinds whose rounds also measure the compressed ceiling (two runs each per round). */
const COMPRESSED_CEILING_KINDS: ReadonlyArray<PayloadKind> = ["json"]

/** The compressed ceiling of one round, both variants, against the raw ceiling and our transport. */
export interface CompressedCeilingRound {
  /** Blocks compressed in the sender's loop (binding + zstd), and compressed once (binding alone). */
  readonly compressingMsgsPerSec: number
  readonly precompressedMsgsPerSec: number
  /** Each over the raw ceiling's message rate at the uncompressed frame size. */
  readonly compressingToCeiling: number
  readonly precompressedToCeiling: number
  /** Our transport, compressed, over the compressing variant: the share of the bound it reaches. */
  readonly onToCompressing: number
  /** Compressed wire bytes per message (block headers included). */
  readonly wireBytesPerMessage: number
}

/** One kind's on and off runs (alternating which goes first) between two raw ceiling runs. */
export interface AppendRound {
  /** Raw ceiling MB/s just before and just after, and its message rate at this frame size. */
  readonly rawBefore: number
  readonly rawAfter: number
  readonly ceilingMsgsPerSec: number
  readonly onMsgsPerSec: number
  readonly offMsgsPerSec: number
  /** Compressed over the ceiling, uncompressed over the ceiling, and compressed over uncompressed. */
  readonly onToCeiling: number
  readonly offToCeiling: number
  readonly onToOff: number
  /** For the kinds in `COMPRESSED_CEILING_KINDS`. */
  readonly compressedCeiling?: CompressedCeilingRound
}

export interface AppendKindResult {
  readonly payload: PayloadKind
  /** Mean uncompressed framed bytes per message. */
  readonly framedBytesPerMessage: number
  readonly rounds: ReadonlyArray<AppendRound>
  /** Medians over the rounds. */
  readonly onToCeiling: number
  readonly offToCeiling: number
  readonly onToOff: number
  readonly onMsgsPerSec: number
  readonly offMsgsPerSec: number
  /** Medians over the rounds, field by field. */
  readonly compressedCeiling?: CompressedCeilingRound
}

export interface SnapshotTransferResult {
  readonly snapshotBytes: number
  /** Send to delivery, ms, per transfer. */
  readonly onMs: ReadonlyArray<number>
  readonly offMs: ReadonlyArray<number>
  /** Median off over median on: how many times faster compressed. */
  readonly speedup: number
}

export interface SnapshotTransferOptions {
  readonly keyDir: string
  readonly snapshotBytes: number
  /** Pairs of processes per setting, and transfers per pair. */
  readonly snapshotPairs: number
  readonly transfersPerPair: number
}

const SENDER = 1
const RECEIVER = 2

interface SnapshotCommand extends Msg {
  readonly type: "snapshot"
  readonly bytes: number
}
interface SnapshotSent extends Msg {
  readonly type: "snapshot"
  readonly sentAt: number
}
interface DeliveredReply extends Msg {
  readonly type: "delivered"
  readonly at: ReadonlyArray<number>
}

const nodeArgs = (args: ReadonlyArray<string>) => {
  const [keyDir, overrides] = args
  if (keyDir === undefined) throw new Error("expected <keyDir> [overrides-json]")
  return { keyDir, overrides: parseOverrides(overrides) }
}

/** Records when each snapshot is delivered; reports (and forgets) them on request. */
export const snapshotReceiverRole: Role = (parent) =>
  Effect.gen(function*() {
    const { keyDir, overrides } = nodeArgs(parent.args)
    const node = yield* startLoopbackNode(RECEIVER, keyDir, overrides)
    let delivered: Array<number> = []
    parent.setCounters(() => ({ delivered: delivered.length }))
    yield* meetPeer(parent, node)
    yield* onReceived(node, (batch, now) => {
      for (const m of batch) if (m.msgType === MessageType.Snapshot) delivered.push(now)
    })
    while (true) {
      yield* parent.next("delivered")
      const reply: DeliveredReply = { type: "delivered", at: delivered }
      delivered = []
      yield* parent.send(reply)
    }
  })

/** Sends one KV snapshot of the size asked for, and says when. */
export const snapshotSenderRole: Role = (parent) =>
  Effect.gen(function*() {
    const { keyDir, overrides } = nodeArgs(parent.args)
    const node = yield* startLoopbackNode(SENDER, keyDir, overrides)
    const images = new Map<number, Uint8Array>()
    yield* meetPeer(parent, node)
    while (true) {
      const command = yield* parent.next<SnapshotCommand>("snapshot")
      let data = images.get(command.bytes)
      if (data === undefined) images.set(command.bytes, data = kvSnapshotJson(command.bytes))
      const snapshot: RaftMessage = {
        msgType: MessageType.Snapshot,
        from: SENDER,
        to: RECEIVER,
        term: 3,
        snapshot: { data, metadata: { index: 100_000, term: 2, confState: { voters: [SENDER, RECEIVER] } } }
      }
      const sentAt = epochNow()
      yield* node.transport.send(RECEIVER, snapshot)
      yield* parent.send({ type: "snapshot", sentAt } as SnapshotSent)
    }
  })

/** Transfer times (ms) of `transfers` snapshots, one at a time, after a 1 MB warm-up. */
const snapshotTransfers = (keyDir: string, overrides: ConfigOverrides, bytes: number, transfers: number) =>
  Effect.scoped(Effect.gen(function*() {
    const [receiver, sender] = yield* spawnPair("snapshot-receiver", "snapshot-sender", [keyDir, JSON.stringify(overrides)])
    const transfer = (size: number) =>
      Effect.gen(function*() {
        const { sentAt } = yield* sender.request<SnapshotSent>({ type: "snapshot", bytes: size } as SnapshotCommand, 60_000)
        const deadline = Date.now() + 60_000
        while (Date.now() < deadline) {
          const { at } = yield* receiver.request<DeliveredReply>({ type: "delivered" }, 5_000)
          if (at.length > 0) return at[0]! - sentAt
          yield* Effect.sleep("50 millis")
        }
        return yield* new PeerProcessFailed({ role: "snapshot-receiver", reason: "no snapshot delivered within 60 s", output: "" })
      })
    yield* transfer(1_000_000)
    const times: Array<number> = []
    for (let i = 0; i < transfers; i++) times.push(yield* transfer(bytes))
    return times
  }))

/**
 * Appends of each payload kind, compression on and off, in `rounds` rounds: each round runs
 * every kind's on and off runs (and, for JSON, the two compressed ceiling runs) between two raw
 * ceiling runs (the raw runs are shared by neighbouring kinds), so each ratio compares runs
 * minutes apart at most, and which of on and off goes first alternates between rounds. The
 * verdicts use the medians over the rounds.
 */
export const runCompressedAppends = (
  options: FlowOptions & { readonly keyDir: string; readonly rounds: number }
): Effect.Effect<ReadonlyArray<AppendKindResult>, PeerProcessFailed> =>
  Effect.gen(function*() {
    const raw = Effect.map(runRawCeiling(options), (r) => r.mbPerSec)
    const ceiling = (payload: PayloadKind, variant: CompressedCeilingVariant) =>
      Effect.flatMap(runCompressedCeiling({ ...options, payload, variant }), (c) =>
        c.failures > 0 || c.notCompressed > 0
          ? Effect.fail(
            new PeerProcessFailed({
              role: "compressed-ceiling",
              reason: `${c.failures} blocks refused, ${c.notCompressed} sent uncompressed`,
              output: ""
            })
          )
          : Effect.succeed(c))
    const rounds = new Map<PayloadKind, Array<AppendRound>>(payloadKinds.map((k) => [k, []]))
    const framed = new Map<PayloadKind, number>()
    let rawBefore = yield* raw
    for (let round = 0; round < options.rounds; round++) {
      for (const payload of payloadKinds) {
        const run = (setting: "on" | "off") =>
          runTransportThroughput({
            ...options,
            kind: "append",
            payload,
            overrides: setting === "on" ? COMPRESSION_ON : COMPRESSION_OFF,
            keyDir: join(options.keyDir, `${payload}-${setting}-${round}`)
          })
        const first = yield* run(round % 2 === 0 ? "on" : "off")
        const second = yield* run(round % 2 === 0 ? "off" : "on")
        const [on, off] = round % 2 === 0 ? [first, second] : [second, first]
        const compressed = COMPRESSED_CEILING_KINDS.includes(payload)
          ? yield* Effect.all({ compressing: ceiling(payload, "compressing"), precompressed: ceiling(payload, "precompressed") })
          : undefined
        const rawAfter = yield* raw
        framed.set(payload, on.framedBytesPerMessage)
        const ceilingMsgsPerSec = (((rawBefore + rawAfter) / 2) * 1e6) / on.framedBytesPerMessage
        rounds.get(payload)!.push({
          rawBefore,
          rawAfter,
          ceilingMsgsPerSec,
          onMsgsPerSec: on.msgsPerSec,
          offMsgsPerSec: off.msgsPerSec,
          onToCeiling: on.msgsPerSec / ceilingMsgsPerSec,
          offToCeiling: off.msgsPerSec / ceilingMsgsPerSec,
          onToOff: on.msgsPerSec / off.msgsPerSec,
          ...(compressed === undefined ? {} : {
            compressedCeiling: {
              compressingMsgsPerSec: compressed.compressing.msgsPerSec,
              precompressedMsgsPerSec: compressed.precompressed.msgsPerSec,
              compressingToCeiling: compressed.compressing.msgsPerSec / ceilingMsgsPerSec,
              precompressedToCeiling: compressed.precompressed.msgsPerSec / ceilingMsgsPerSec,
              onToCompressing: on.msgsPerSec / compressed.compressing.msgsPerSec,
              wireBytesPerMessage: compressed.compressing.wireBytesPerMessage
            }
          })
        })
        rawBefore = rawAfter
      }
    }
    return payloadKinds.map((payload): AppendKindResult => {
      const rs = rounds.get(payload)!
      const med = (f: (r: AppendRound) => number) => median(rs.map(f))
      const cs = rs.flatMap((r) => r.compressedCeiling === undefined ? [] : [r.compressedCeiling])
      const cmed = (f: (c: CompressedCeilingRound) => number) => median(cs.map(f))
      return {
        payload,
        framedBytesPerMessage: framed.get(payload)!,
        rounds: rs,
        onToCeiling: med((r) => r.onToCeiling),
        offToCeiling: med((r) => r.offToCeiling),
        onToOff: med((r) => r.onToOff),
        onMsgsPerSec: med((r) => r.onMsgsPerSec),
        offMsgsPerSec: med((r) => r.offMsgsPerSec),
        ...(cs.length === 0 ? {} : {
          compressedCeiling: {
            compressingMsgsPerSec: cmed((c) => c.compressingMsgsPerSec),
            precompressedMsgsPerSec: cmed((c) => c.precompressedMsgsPerSec),
            compressingToCeiling: cmed((c) => c.compressingToCeiling),
            precompressedToCeiling: cmed((c) => c.precompressedToCeiling),
            onToCompressing: cmed((c) => c.onToCompressing),
            wireBytesPerMessage: cmed((c) => c.wireBytesPerMessage)
          }
        })
      }
    })
  })

/** Snapshot transfer times, compression on and off, in alternating pairs of processes. */
export const runSnapshotTransfers = (options: SnapshotTransferOptions): Effect.Effect<SnapshotTransferResult, PeerProcessFailed> =>
  Effect.gen(function*() {
    const onMs: Array<number> = []
    const offMs: Array<number> = []
    for (let pair = 0; pair < options.snapshotPairs; pair++) {
      const dir = (setting: string) => join(options.keyDir, `snapshot-${setting}-${pair}`)
      onMs.push(...yield* snapshotTransfers(dir("on"), COMPRESSION_ON, options.snapshotBytes, options.transfersPerPair))
      offMs.push(...yield* snapshotTransfers(dir("off"), COMPRESSION_OFF, options.snapshotBytes, options.transfersPerPair))
    }
    return { snapshotBytes: options.snapshotBytes, onMs, offMs, speedup: median(offMs) / median(onMs) }
  })
