/**
 * The raw `@number0/iroh` ceiling: two processes, two bare endpoints (minimal preset, relays
 * off, 127.0.0.1:0), one uni stream. The sender writes one pre-built 64 KiB `Array<number>`
 * frame over and over; the receiver reads `RAW_READ_BYTES` at a time and counts. The rate is the
 * receiver's count over a steady-state window, after a warm-up. This is what any transport
 * on this binding can hope for on one connection.
 */
import iroh from "@number0/iroh"
import { Effect, type Scope } from "effect"
import { performance } from "node:perf_hooks"
import { dialAddressOf } from "../../src/iroh/addresses.ts"
import { endpointAddrOf } from "../../src/iroh/binding.ts"
import type { PeerAddress } from "../../src/domain/peer-table.ts"
import { type FirstMsg, type PeerMsg, type PeerProcessFailed, type ReadyMsg, type Role, runFromStartToStop } from "../harness/ipc.ts"
import { spawnPeer } from "../harness/peer-processes.ts"
import { counterDelta, type ProbeWindow } from "../harness/probe.ts"
import { mbPerSecond } from "../harness/stats.ts"
import { type FlowOptions, measureFlow, quietMedian } from "../harness/windows.ts"

const { Endpoint, RelayMode, presetMinimal } = iroh
export type RawEndpoint = InstanceType<typeof Endpoint>

const ALPN = Array.from(new TextEncoder().encode("raft-transport-bench/raw"))
export const RAW_FRAME_BYTES = 64 * 1024
/**
 * The receiver's read size: the binding returns each read as an `Array<number>` of this many
 * elements, and V8 makes arrays of 16,384 or more the slow way (`bench/tools/array-cost.ts`);
 * 12 KiB reads cost the receiver 64-71 ns a byte against 98-114 for 16,383 and 32 KiB. The
 * ceiling is the binding at its best, so it reads 12 KiB, as the transport does;
 * `BENCH_RAW_READ_BYTES` sets another size.
 */
export const RAW_READ_BYTES = Number(process.env["BENCH_RAW_READ_BYTES"] ?? 12 * 1024)

export const bindRaw: Effect.Effect<RawEndpoint, Error, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({
    try: () => {
      const builder = Endpoint.builder()
      presetMinimal(builder)
      builder.relayMode(RelayMode.disabled())
      builder.alpns([ALPN])
      builder.bindAddr("127.0.0.1:0")
      return builder.bind()
    },
    catch: (cause) => new Error(`binding the raw endpoint failed: ${String(cause)}`)
  }),
  (endpoint) => Effect.promise(() => endpoint.close().catch(() => undefined)).pipe(Effect.timeout("2 seconds"), Effect.ignore)
)

/** A bare endpoint has no raft id; the address only carries what `dialAddressOf` reads. */
export const addressOf = (endpoint: RawEndpoint): PeerAddress => ({
  id: 0,
  irohEndpointId: endpoint.id().toString(),
  irohAddresses: endpoint.boundSockets()
})

type RawRecvStream = InstanceType<typeof iroh.RecvStream>

/**
 * In the background of the role's scope: accepts the first connection's first uni stream and
 * hands it to `read`, which returns when the stream ends.
 */
export const readFirstUni = (
  endpoint: RawEndpoint,
  read: (stream: RawRecvStream) => Promise<void>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(Effect.forkScoped(
    Effect.promise(async () => {
      try {
        const incoming = await endpoint.acceptNext()
        if (incoming === null) return
        await read(await (await (await incoming.accept()).connect()).acceptUni())
      } catch {
        // The sender went away at the end of the run.
      }
    }),
    { startImmediately: true }
  ))

/** A connection to the receiver at `address`. */
export const connectTo = (endpoint: RawEndpoint, address: PeerAddress) =>
  Effect.tryPromise({
    try: () => endpoint.connect(endpointAddrOf(dialAddressOf(address)!), ALPN),
    catch: (cause) => new Error(`connecting to the raw receiver failed: ${String(cause)}`)
  })

/** A uni stream to the receiver at `address`. */
export const openUniTo = (endpoint: RawEndpoint, address: PeerAddress) =>
  Effect.flatMap(connectTo(endpoint, address), (connection) =>
    Effect.tryPromise({
      try: () => connection.openUni(),
      catch: (cause) => new Error(`opening a stream to the raw receiver failed: ${String(cause)}`)
    }))

/** Counts everything that arrives on the first uni stream of the first connection. */
export const rawReceiverRole: Role = (parent) =>
  Effect.gen(function*() {
    const endpoint = yield* bindRaw
    let bytes = 0
    let reads = 0
    let readSyncMs = 0
    parent.setCounters(() => ({ bytes, reads, readSyncMs }))
    yield* parent.send({ type: "ready", address: addressOf(endpoint) } as ReadyMsg)
    yield* readFirstUni(endpoint, async (stream) => {
      while (true) {
        const t0 = performance.now()
        const pending = stream.read(RAW_READ_BYTES)
        readSyncMs += performance.now() - t0
        const chunk = await pending
        if (chunk.length === 0) return
        if (bytes === 0) Effect.runFork(parent.send({ type: "first" } as FirstMsg))
        bytes += chunk.length
        reads++
      }
    })
  })

/** Dials the receiver, then writes the same 64 KiB frame from `start` until `stop`. */
export const rawSenderRole: Role = (parent) =>
  Effect.gen(function*() {
    const { address } = yield* parent.next<PeerMsg>("peer")
    const endpoint = yield* bindRaw
    const frame = new Array<number>(RAW_FRAME_BYTES)
    for (let i = 0; i < RAW_FRAME_BYTES; i++) frame[i] = (i * 31) & 0xff
    const stream = yield* openUniTo(endpoint, address)
    let bytesWritten = 0
    let writes = 0
    // Time inside `writeAll` before it returns its promise: the synchronous `Array<number>` copy.
    let syncMs = 0
    parent.setCounters(() => ({ bytes: bytesWritten, writes, syncMs }))
    yield* parent.send({ type: "ready", address: addressOf(endpoint) } as ReadyMsg)
    yield* runFromStartToStop(parent, (running) =>
      Effect.tryPromise(async () => {
        while (running()) {
          const t0 = performance.now()
          const pending = stream.writeAll(frame)
          syncMs += performance.now() - t0
          await pending
          bytesWritten += RAW_FRAME_BYTES
          writes++
        }
      }))
    yield* parent.send({ type: "stop" })
  })

export interface RawCeilingResult {
  /** Median over the windows without background load (all windows if none was quiet). */
  readonly mbPerSec: number
  /** Each window's rate, and the background load (cores) during it. */
  readonly windows: ReadonlyArray<{ readonly mbPerSec: number; readonly backgroundCores: number }>
  readonly bytes: number
  readonly windowMs: number
  /** Main-thread time per written byte spent synchronously in `writeAll` (ns). */
  readonly writeSyncNsPerByte: number
  /** Cores busy machine-wide during the measurement (all processes). */
  readonly machineCores: number
  readonly sender: ProbeWindow
  readonly receiver: ProbeWindow
}

/** Orchestrator side: spawn both processes, measure a steady flow, stop. */
export const runRawCeiling = (options: FlowOptions): Effect.Effect<RawCeilingResult, PeerProcessFailed> =>
  Effect.scoped(
    Effect.gen(function*() {
      const receiver = yield* spawnPeer("raw-receiver")
      const { address } = yield* receiver.next<ReadyMsg>("ready")
      const sender = yield* spawnPeer("raw-sender")
      // One-way: only the sender dials, so it gets the receiver's address and nothing comes back.
      yield* sender.send({ type: "peer", address } as PeerMsg)
      yield* sender.next<ReadyMsg>("ready")
      const { receiver: r, sender: s, ...measured } = yield* measureFlow(receiver, sender, options)
      const sentBytes = counterDelta(s, "bytes")
      const windows = measured.windows.map((w) => ({
        mbPerSec: mbPerSecond(w.deltas[0]!["bytes"] ?? 0, w.ms),
        backgroundCores: w.backgroundCores
      }))
      return {
        mbPerSec: quietMedian(windows, (w) => w.mbPerSec),
        windows,
        bytes: counterDelta(r, "bytes"),
        windowMs: r.ms,
        writeSyncNsPerByte: sentBytes > 0 ? (counterDelta(s, "syncMs") * 1e6) / sentBytes : Number.NaN,
        machineCores: measured.machineCores,
        sender: s,
        receiver: r
      }
    })
  )
