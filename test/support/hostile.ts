import iroh from "@number0/iroh"
import { Effect, Fiber, Metric } from "effect"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { ALPN, irohCall, IrohFailure } from "../../src/iroh/protocol.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import { addressOf, heartbeat, nodeConfig, startNode, tempDir } from "./network-cluster.ts"
import { rawIrohEndpoint } from "./raw-iroh.ts"

const { EndpointAddr, EndpointId } = iroh

/** The shortest election timeout of the reference Raft (300-600 ms): a gap longer than this lets a follower start an election. */
export const MIN_ELECTION_TIMEOUT_MS = 300
/** How often the legitimate peer sends a heartbeat while an attack runs. */
export const HEARTBEAT_EVERY_MS = 20

/** A small seeded PRNG (mulberry32): the same seed gives the same inputs on every run. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256))
  }
}

/** The seed of the fuzz tests: `HOSTILE_SEED` to replay another run, else a fixed one. */
export const fuzzSeed = (): number => {
  const env = process.env["HOSTILE_SEED"]
  return env !== undefined && /^[0-9]+$/.test(env) ? Number(env) : 12
}

export interface FlowReport {
  /**
   * The longest gap between heartbeats arriving, counting only time this process's main thread
   * ran (its CPU time, capped by the wall-clock gap): the event loop the victim's decoding could
   * hold. Other processes on the shared test machine can deschedule this one for longer, which
   * is no fault of the transport; `maxWallGapMs` keeps the plain figure.
   */
  readonly maxGapMs: number
  readonly maxWallGapMs: number
  readonly heartbeats: number
  readonly others: ReadonlyArray<RaftMessage>
}

export interface LegitFlow {
  /** Stops the flow and reports it (see `FlowReport`), with every other message that arrived. */
  readonly stop: Effect.Effect<FlowReport>
}

/** CPU time of this thread (the event loop), in ms. */
const threadCpuMs = (): number => {
  const u = process.threadCpuUsage()
  return (u.user + u.system) / 1000
}

/**
 * A legitimate peer's heartbeats to the victim every `HEARTBEAT_EVERY_MS`, and the victim's
 * receive loop that timestamps them (every other message it receives is kept for the caller's
 * accounting). Start it before an attack, stop it after.
 */
export const legitFlow = (sender: RaftTransportService, victim: RaftTransportService) =>
  Effect.gen(function*() {
    const arrivals: Array<number> = []
    const cpuAt: Array<number> = []
    const others: Array<RaftMessage> = []
    let commit = 0
    const send = yield* Effect.forkChild(
      Effect.forever(Effect.andThen(Effect.ignore(sender.send(victim.nodeId, heartbeat(sender.nodeId, victim.nodeId, ++commit))), Effect.sleep(HEARTBEAT_EVERY_MS)))
    )
    const receive = yield* Effect.forkChild(
      Effect.forever(Effect.map(victim.receiveBatch(256), (batch) => {
        const now = performance.now()
        const cpu = threadCpuMs()
        for (const m of batch) {
          if (m.from === sender.nodeId && m.msgType === MessageType.Heartbeat) {
            arrivals.push(now)
            cpuAt.push(cpu)
          }
          else others.push(m)
        }
      }))
    )
    // The flow is up once heartbeats arrive.
    while (arrivals.length < 3) yield* Effect.sleep(20)
    const flow: LegitFlow = {
      stop: Effect.gen(function*() {
        yield* Fiber.interrupt(send)
        yield* Effect.sleep(4 * HEARTBEAT_EVERY_MS) // the last ones in flight land
        yield* Fiber.interrupt(receive)
        let maxGapMs = 0
        let maxWallGapMs = 0
        for (let i = 1; i < arrivals.length; i++) {
          const wall = arrivals[i]! - arrivals[i - 1]!
          maxWallGapMs = Math.max(maxWallGapMs, wall)
          maxGapMs = Math.max(maxGapMs, Math.min(wall, cpuAt[i]! - cpuAt[i - 1]!))
          if (process.env["HOSTILE_DEBUG"] !== undefined && wall > 60) {
            console.log(`gap ${Math.round(wall)} ms wall, ${Math.round(cpuAt[i]! - cpuAt[i - 1]!)} ms cpu, at +${Math.round(arrivals[i - 1]! - arrivals[0]!)} ms`)
          }
        }
        if (process.env["HOSTILE_DEBUG"] !== undefined) {
          console.log(`flow: ${arrivals.length} heartbeats, longest gap ${maxGapMs.toFixed(0)} ms of event-loop time (${maxWallGapMs.toFixed(0)} ms wall)`)
        }
        return { maxGapMs, maxWallGapMs, heartbeats: arrivals.length, others }
      })
    }
    return flow
  })

/** Current value of every series of a counter whose attributes include `match`, summed. */
export const counterSum = (metric: Metric.Counter<number>, match: Record<string, string>) =>
  Effect.map(Metric.snapshot, (snapshots) => {
    let sum = 0
    for (const s of snapshots) {
      if (s.id !== (metric as unknown as { id: string }).id) continue
      const attrs = (s.attributes ?? {}) as Record<string, string>
      if (Object.entries(match).every(([k, v]) => attrs[k] === v)) sum += Number((s.state as { count: number | bigint }).count)
    }
    return sum
  })

/** The refusal and error counters of one transport, by reason. */
export const inboundCounts = (transport: string) =>
  Effect.gen(function*() {
    const out: Record<string, number> = {}
    for (const [metric, key] of [[M.inboundRefused, "reason"], [M.inboundErrors, "kind"]] as const) {
      yield* Effect.map(Metric.snapshot, (snapshots) => {
        for (const s of snapshots) {
          if (s.id !== (metric as unknown as { id: string }).id) continue
          const attrs = (s.attributes ?? {}) as Record<string, string>
          if (attrs["transport"] !== transport) continue
          const name = attrs[key]!
          out[name] = (out[name] ?? 0) + Number((s.state as { count: number | bigint }).count)
        }
      })
    }
    return out
  })

/** What changed between two `inboundCounts`, zeros left out. */
export const countsDelta = (before: Record<string, number>, after: Record<string, number>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0)
  return out
}

/** A raw binding endpoint dials the victim's Iroh endpoint. */
export const dialVictim = (raw: InstanceType<typeof iroh.Endpoint>, victim: RaftTransportService, alpn: Array<number> = ALPN) => {
  const address = victim.localAddress().iroh!
  return irohCall(
    () => raw.connect(new EndpointAddr(EndpointId.fromString(address.endpointId), null, [...address.addresses]), alpn),
    IrohFailure.of
  )
}

export const VICTIM = 1
export const LEGIT = 2

/**
 * The victim (node 1) and a legitimate peer (node 2) over `mode`, each in the other's table;
 * `extra` goes into the victim's config, `workerThread` runs the victim's Iroh binding in a
 * worker thread.
 */
export const victimAndPeer = (
  mode: "iroh" | "grpc",
  extra: Record<string, unknown> = {},
  options: { readonly workerThread?: boolean } = {}
) =>
  Effect.gen(function*() {
    const dir = tempDir()
    const iroh = options.workerThread === true
      ? { iroh_config: { key_file: `${dir}/node${VICTIM}.key`, relay_mode: "disabled", worker_thread: true } }
      : {}
    const victim = yield* startNode(yield* nodeConfig(mode, VICTIM, dir, { ...extra, ...iroh }))
    const legit = yield* startNode(yield* nodeConfig(mode, LEGIT, dir))
    yield* victim.addPeer(addressOf(legit))
    yield* legit.addPeer(addressOf(victim))
    return { victim, legit }
  })

/** A bare Iroh endpoint that the victim has in its peer table as `id`. */
export const knownRawPeer = (victim: RaftTransportService, id: number) =>
  Effect.gen(function*() {
    const raw = yield* rawIrohEndpoint
    yield* victim.addPeer({ id, irohEndpointId: raw.id().toString(), irohAddresses: [] })
    return raw
  })

/** Resident set size in MiB. */
export const rssMiB = (): number => process.memoryUsage().rss / (1024 * 1024)
