/**
 * The raw `@number0/iroh` ceiling: two processes, two bare endpoints (minimal preset, relays
 * off, 127.0.0.1:0), one uni stream. The sender writes one pre-built 64 KiB `Array<number>`
 * frame over and over; the receiver reads with `read(32768)` and counts. The rate is the
 * receiver's count over a steady-state window, after a warm-up. This is what any transport
 * on this binding can hope for on one connection.
 */
import iroh from "@number0/iroh"
import { Duration, Effect, Fiber, type Scope } from "effect"
import { performance } from "node:perf_hooks"
import type { Msg, NodeAddress, PeerMsg, ReadyMsg, Role } from "./ipc.ts"
import { type PeerProcessFailed } from "./ipc.ts"
import { spawnPeer } from "./peer-processes.ts"
import type { ProbeWindow } from "./probe.ts"
import { mbPerSecond } from "./stats.ts"
import { measureWindows, quietMedian } from "./windows.ts"

const { Endpoint, EndpointAddr, EndpointId, RelayMode, presetMinimal } = iroh
type RawEndpoint = InstanceType<typeof Endpoint>

const ALPN = Array.from(new TextEncoder().encode("raft-transport-bench/raw"))
export const RAW_FRAME_BYTES = 64 * 1024
export const RAW_READ_BYTES = 32 * 1024

const bindRaw: Effect.Effect<RawEndpoint, Error, Scope.Scope> = Effect.acquireRelease(
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

const addressOf = (endpoint: RawEndpoint): NodeAddress => ({
  nodeId: 0,
  endpointId: endpoint.id().toString(),
  addresses: endpoint.boundSockets()
})

interface FirstMsg extends Msg {
  readonly type: "first"
}

interface StopReply extends Msg {
  readonly type: "stop"
  readonly bytesWritten: number
  readonly writes: number
  /** Time spent inside `writeAll` before it returned its promise (the synchronous copy). */
  readonly syncMs: number
}

/** Counts everything that arrives on the first uni stream of the first connection. */
export const rawReceiverRole: Role = (parent) =>
  Effect.gen(function*() {
    const endpoint = yield* bindRaw
    let bytes = 0
    let reads = 0
    let readSyncMs = 0
    parent.setCounters(() => ({ bytes, reads, readSyncMs }))
    yield* parent.send({ type: "ready", address: addressOf(endpoint) } as ReadyMsg)
    yield* Effect.forkScoped(
      Effect.promise(async () => {
        try {
          const incoming = await endpoint.acceptNext()
          if (incoming === null) return
          const connection = await (await incoming.accept()).connect()
          const stream = await connection.acceptUni()
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
        } catch {
          // The sender went away at the end of the run.
        }
      }),
      { startImmediately: true }
    )
  })

/** Dials the receiver, then writes the same 64 KiB frame from `start` until `stop`. */
export const rawSenderRole: Role = (parent) =>
  Effect.gen(function*() {
    const { address } = yield* parent.next<PeerMsg>("peer")
    const endpoint = yield* bindRaw
    const frame = new Array<number>(RAW_FRAME_BYTES)
    for (let i = 0; i < RAW_FRAME_BYTES; i++) frame[i] = (i * 31) & 0xff
    const stream = yield* Effect.tryPromise({
      try: async () => {
        const target = new EndpointAddr(EndpointId.fromString(address.endpointId), null, [...address.addresses])
        const connection = await endpoint.connect(target, ALPN)
        return connection.openUni()
      },
      catch: (cause) => new Error(`connecting to the raw receiver failed: ${String(cause)}`)
    })
    let bytesWritten = 0
    let writes = 0
    let syncMs = 0
    let stopped = false
    parent.setCounters(() => ({ bytes: bytesWritten, writes, syncMs }))
    yield* parent.send({ type: "ready", address: addressOf(endpoint) } as ReadyMsg)
    yield* parent.next("start")
    const writer = yield* Effect.forkScoped(
      Effect.tryPromise(async () => {
        while (!stopped) {
          const t0 = performance.now()
          const pending = stream.writeAll(frame)
          syncMs += performance.now() - t0
          await pending
          bytesWritten += RAW_FRAME_BYTES
          writes++
        }
      }),
      { startImmediately: true }
    )
    yield* parent.next("stop")
    stopped = true
    yield* Fiber.await(writer) // let the last write finish
    yield* parent.send({ type: "stop", bytesWritten, writes, syncMs } as StopReply)
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

export interface RawCeilingOptions {
  readonly warmupMs: number
  readonly windows: number
  readonly windowMs: number
}

/** Orchestrator side: spawn both processes, measure a steady window, stop. */
export const runRawCeiling = (options: RawCeilingOptions): Effect.Effect<RawCeilingResult, PeerProcessFailed> =>
  Effect.scoped(
    Effect.gen(function*() {
      const receiver = yield* spawnPeer("raw-receiver")
      const { address } = yield* receiver.next<ReadyMsg>("ready")
      const sender = yield* spawnPeer("raw-sender")
      yield* sender.send({ type: "peer", address } as PeerMsg)
      yield* sender.next<ReadyMsg>("ready")
      yield* sender.send({ type: "start" })
      yield* receiver.next<FirstMsg>("first", 20_000)
      yield* Effect.sleep(Duration.millis(options.warmupMs))
      const measured = yield* measureWindows([receiver, sender], options.windows, options.windowMs)
      const [r, s] = measured.probes as [ProbeWindow, ProbeWindow]
      const machineCores = measured.machineCores
      yield* sender.request<StopReply>({ type: "stop" }, 10_000)
      const bytes = (r.end.counters["bytes"] ?? 0) - (r.start.counters["bytes"] ?? 0)
      const sentBytes = (s.end.counters["bytes"] ?? 0) - (s.start.counters["bytes"] ?? 0)
      const syncMs = (s.end.counters["syncMs"] ?? 0) - (s.start.counters["syncMs"] ?? 0)
      const windows = measured.windows.map((w) => ({
        mbPerSec: mbPerSecond(w.deltas[0]!["bytes"] ?? 0, w.ms),
        backgroundCores: w.backgroundCores
      }))
      return {
        mbPerSec: quietMedian(windows, (w) => w.mbPerSec),
        windows,
        bytes,
        windowMs: r.ms,
        writeSyncNsPerByte: sentBytes > 0 ? (syncMs * 1e6) / sentBytes : Number.NaN,
        machineCores,
        sender: s,
        receiver: r
      }
    })
  )
