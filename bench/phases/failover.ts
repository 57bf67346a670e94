/**
 * Failover time in dual mode, with real processes (the layout of test/dual.test.ts): the
 * sender is a dual-mode node 1; its peer 2 is two processes that share raft id 2, an
 * Iroh-only node (with a key file) and a gRPC-only node, so the Iroh side can die on its own.
 * The sender sends a 100 B append every millisecond (index 1, 2, 3, ..., its send time in
 * `term` as epoch microseconds). Once the stream runs over Iroh the orchestrator kills the
 * Iroh process (SIGTERM: the role's scope closes and the endpoint says goodbye; SIGKILL: the
 * path just goes dark and only the probes notice) and measures, from that moment:
 *
 * - the first message delivered over gRPC (its receive time at the gRPC node),
 * - the sender's `FellBack` event,
 * - the messages lost: indices below the last one delivered over gRPC that neither receiver
 *   got.
 *
 * Cross-process times are epoch ms from `performance.timeOrigin + performance.now()`. The Iroh
 * receiver logs what it received to a file with `writeSync` as it goes, so its record
 * survives a SIGKILL.
 */
import { Effect, Metric, Stream } from "effect"
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import * as M from "../../src/metrics/metrics.ts"
import type { TransportEvent } from "../../src/domain/events.ts"
import type { PeerAddress } from "../../src/domain/peer-table.ts"
import { type FirstMsg, type Msg, type PeerProcessFailed, type ReadyMsg, type Role, runFromStartToStop } from "../harness/ipc.ts"
import { meetPeer, modeOverrides, onReceived, startLoopbackNode } from "../harness/loopback-node.ts"
import { introduce, spawnPeer } from "../harness/peer-processes.ts"
import { epochNow } from "../harness/probe.ts"
import { median, summarize } from "../harness/stats.ts"

const SENDER = 1
const RECEIVER = 2
const DATA_BYTES = 100
const data = new Uint8Array(DATA_BYTES).map((_, i) => (i * 13) & 0xff)

const failoverAppend = (index: number, sentAtMs: number): RaftMessage => ({
  msgType: MessageType.Append,
  from: SENDER,
  to: RECEIVER,
  // The send time rides in `term`, as whole epoch microseconds (< 2^53).
  term: Math.round(sentAtMs * 1000),
  logTerm: 1,
  index,
  commit: 0,
  entries: [{ term: 1, index, data }]
})

const sentAtOf = (m: RaftMessage): number => (m.term ?? 0) / 1000

type Range = readonly [lo: number, hi: number]

/** Indices as ranges of consecutive values, in arrival order. */
class Ranges {
  readonly list: Array<[number, number]> = []
  add(i: number): void {
    const last = this.list[this.list.length - 1]
    if (last !== undefined && i === last[1] + 1) last[1] = i
    else this.list.push([i, i])
  }
}

// -----------------------------------------------------------------------------
// Roles
// -----------------------------------------------------------------------------

/** The first message the gRPC half of peer 2 received. */
interface FirstGrpcMsg extends FirstMsg {
  readonly index: number
  readonly sentAt: number
  readonly receivedAt: number
}

/** One delivered message at the gRPC half: index, send time, receive time (epoch ms). */
type Sample = readonly [index: number, sentAt: number, receivedAt: number]

interface GrpcReport extends Msg {
  readonly type: "report"
  readonly ranges: ReadonlyArray<Range>
  readonly samples: ReadonlyArray<Sample>
}

interface SenderStopReply extends Msg {
  readonly type: "stop"
  /** Highest index handed to `send`. */
  readonly sent: number
  readonly rejected: number
  readonly fellBackAt: number | undefined
  readonly fellBackCause: string | undefined
  readonly events: ReadonlyArray<{ readonly tag: string; readonly at: number; readonly detail: string }>
  readonly drops: Readonly<Record<string, number>>
}

/** Peer 2's Iroh half: logs every received index range (and when) to a file, synchronously. */
export const failoverIrohRole: Role = (parent) =>
  Effect.gen(function*() {
    const [keyDir, logFile] = parent.args
    if (keyDir === undefined || logFile === undefined) throw new Error("expected <keyDir> <logFile>")
    const node = yield* startLoopbackNode(RECEIVER, keyDir)
    let msgs = 0
    parent.setCounters(() => ({ msgs }))
    yield* meetPeer(parent, node)
    const fd = yield* Effect.acquireRelease(
      Effect.sync(() => openSync(logFile, "a")),
      (fd) => Effect.sync(() => closeSync(fd))
    )
    yield* onReceived(node, (batch, now) =>
      Effect.gen(function*() {
        const ranges = new Ranges()
        for (const m of batch) if (m.msgType === MessageType.Append) ranges.add(m.index ?? -1)
        if (ranges.list.length > 0) {
          writeSync(fd, ranges.list.map(([lo, hi]) => `${lo} ${hi} ${now.toFixed(3)}\n`).join(""))
        }
        if (msgs === 0) yield* parent.send({ type: "first" } as FirstMsg)
        msgs += batch.length
      }))
  })

/** Peer 2's gRPC half: records what arrives, reports the first message at once. */
export const failoverGrpcRole: Role = (parent) =>
  Effect.gen(function*() {
    const [keyDir] = parent.args
    if (keyDir === undefined) throw new Error("expected <keyDir>")
    const node = yield* startLoopbackNode(RECEIVER, keyDir, modeOverrides("grpc"))
    let msgs = 0
    const ranges = new Ranges()
    const samples: Array<Sample> = []
    parent.setCounters(() => ({ msgs }))
    yield* meetPeer(parent, node)
    yield* onReceived(node, (batch, now) =>
      Effect.gen(function*() {
        for (const m of batch) {
          if (m.msgType !== MessageType.Append) continue
          const index = m.index ?? -1
          if (samples.length === 0) {
            yield* parent.send({ type: "first", index, sentAt: sentAtOf(m), receivedAt: now } as FirstGrpcMsg)
          }
          ranges.add(index)
          samples.push([index, sentAtOf(m), now])
        }
        msgs += batch.length
      }))
    yield* parent.next("report")
    yield* parent.send({ type: "report", ranges: ranges.list, samples } as GrpcReport)
  })

/** The dual-mode sender: one append per millisecond to peer 2, and the events it sees. */
export const failoverSenderRole: Role = (parent) =>
  Effect.gen(function*() {
    const [keyDir, ...numbers] = parent.args
    const [probeIntervalMs, probeTimeoutMs, darkAfterMs] = numbers.map(Number)
    if (keyDir === undefined || ![probeIntervalMs, probeTimeoutMs, darkAfterMs].every((n) => Number.isSafeInteger(n))) {
      throw new Error("expected <keyDir> <probeIntervalMs> <probeTimeoutMs> <darkAfterMs>")
    }
    const node = yield* startLoopbackNode(SENDER, keyDir, {
      ...modeOverrides("dual"),
      // darkAfterMs 0 leaves dark paths to the probes alone.
      strategy: { probe_interval_ms: probeIntervalMs, probe_timeout_ms: probeTimeoutMs, dark_after_ms: darkAfterMs }
    })
    const events: Array<{ tag: string; at: number; detail: string }> = []
    let fellBackAt: number | undefined
    let fellBackCause: string | undefined
    const describe = (e: TransportEvent): string => {
      switch (e._tag) {
        case "Connected":
          return e.transport
        case "Disconnected":
          return `${e.transport}: ${e.cause}`
        case "FellBack":
          return e.cause
        case "RouteChanged":
          return `${e.class} ${e.from} -> ${e.to}`
        default:
          return ""
      }
    }
    yield* Effect.forkScoped(
      Stream.runForEach(node.transport.events, (e) =>
        Effect.sync(() => {
          const at = epochNow()
          if (e._tag === "FellBack" && fellBackAt === undefined) {
            fellBackAt = at
            fellBackCause = e.cause
          }
          if (events.length < 200) events.push({ tag: e._tag, at, detail: describe(e).slice(0, 300) })
        })),
      { startImmediately: true }
    )
    let sent = 0
    let rejected = 0
    parent.setCounters(() => ({ sent, rejected }))
    yield* meetPeer(parent, node)

    // Both links of peer 2 up (the dual-mode supervisor dials them at once).
    yield* parent.next("links")
    const linksDeadline = performance.now() + 20_000
    while (true) {
      const status = yield* node.transport.peerStatus(RECEIVER)
      if (status.links.length === 2 && status.links.every((l) => l.state === "connected")) break
      if (performance.now() > linksDeadline) {
        return yield* Effect.fail(new Error(`peer 2's links not both connected within 20 s: ${JSON.stringify(status.links)}`))
      }
      yield* Effect.sleep("20 millis")
    }
    yield* parent.send({ type: "links" })

    yield* runFromStartToStop(parent, (running) =>
      Effect.gen(function*() {
        const t0 = performance.now()
        while (running()) {
          // Absolute schedule: index n is due n - 1 ms after the start; a late tick catches up.
          const due = Math.floor(performance.now() - t0) + 1
          while (sent < due) {
            sent++
            const outcome = yield* Effect.exit(node.transport.send(RECEIVER, failoverAppend(sent, epochNow())))
            if (outcome._tag === "Failure") rejected++
          }
          yield* Effect.sleep("1 millis")
        }
      }))
    const drops: Record<string, number> = {}
    for (const reason of ["link_failed", "expired", "queue_full"]) {
      const counter = Metric.withAttributes(M.messagesDropped, { peer: String(RECEIVER), class: "append", reason })
      drops[reason] = (yield* Metric.value(counter)).count
    }
    const reply: SenderStopReply = { type: "stop", sent, rejected, fellBackAt, fellBackCause, events, drops }
    yield* parent.send(reply)
  })

// -----------------------------------------------------------------------------
// Orchestrator
// -----------------------------------------------------------------------------

export type KillSignal = "SIGTERM" | "SIGKILL"

export interface FailoverRun {
  /** First delivery over Iroh → the kill (warm-up plus this run's share of a probe interval). */
  readonly killDelayMs: number
  /** Kill → the Iroh process gone (SIGTERM: its scope closed, endpoint included). */
  readonly irohExitMs: number
  /** Kill → first message delivered over gRPC (receive time at the gRPC node). */
  readonly failoverMs: number
  /** Kill → the sender's `FellBack` event (NaN if none). */
  readonly fellBackMs: number
  readonly fellBackCause: string
  /** Messages below the last one delivered over gRPC that neither half of peer 2 received. */
  readonly lost: number
  /** Missing index ranges (first few). */
  readonly lostRanges: ReadonlyArray<Range>
  /** Indices received more than once (by either half). */
  readonly duplicates: number
  /** Kill → send time of the first message that arrived over gRPC (negative: queued before the kill). */
  readonly firstGrpcSentMs: number
  /** That message's own send → receive latency. */
  readonly firstGrpcLatencyMs: number
  readonly firstGrpcIndex: number
  /** Kill → the last delivery over Iroh (negative: before the kill). */
  readonly lastIrohMs: number
  readonly lastIrohIndex: number
  /** Send → receive over gRPC once it carries the stream (from 100 ms after the first gRPC delivery). */
  readonly grpcLatencyP50Ms: number
  readonly grpcLatencyP99Ms: number
  /** Messages the sender handed to `send`, and the rejected ones. */
  readonly sent: number
  readonly rejected: number
  /** Sender-side drops of appends to peer 2 by reason (link_failed, expired, queue_full). */
  readonly drops: Readonly<Record<string, number>>
  /** Kill → the sender's `Disconnected` event for the Iroh link (NaN if none). */
  readonly disconnectedMs: number
}

export type FailoverRunOutcome =
  | { readonly _tag: "ok"; readonly run: FailoverRun }
  | { readonly _tag: "failed"; readonly error: string }

export interface FailoverResult {
  readonly signal: KillSignal
  readonly probeIntervalMs: number
  readonly probeTimeoutMs: number
  /** The sender's `strategy.dark_after_ms` (0: probes alone). */
  readonly darkAfterMs: number
  readonly runs: ReadonlyArray<FailoverRunOutcome>
}

export interface FailoverOptions {
  readonly keyDir: string
  readonly signal: KillSignal
  readonly probeIntervalMs: number
  readonly probeTimeoutMs: number
  readonly darkAfterMs: number
  readonly runs: number
  /** Steady sending over Iroh before the kill. */
  readonly warmupMs: number
  /** Sending after the first gRPC delivery, before the sender stops. */
  readonly afterMs: number
  /** Longest wait for the first gRPC delivery. */
  readonly timeoutMs: number
}

const parseIrohLog = (text: string): { ranges: Array<Range>; lastIndex: number; lastAt: number } => {
  const ranges: Array<Range> = []
  let lastIndex = -1
  let lastAt = Number.NaN
  for (const line of text.split("\n")) {
    const [lo, hi, at] = line.trim().split(" ").map(Number)
    if (lo === undefined || hi === undefined || at === undefined || !Number.isFinite(at)) continue
    ranges.push([lo, hi])
    if (hi >= lastIndex) {
      lastIndex = hi
      lastAt = at
    }
  }
  return { ranges, lastIndex, lastAt }
}

const runOnce = (
  options: FailoverOptions,
  runDir: string,
  extraDelayMs: number
): Effect.Effect<FailoverRun, PeerProcessFailed | Error> =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* Effect.sync(() => mkdirSync(runDir, { recursive: true }))
      const logFile = join(runDir, "iroh-received.log")
      const irohRx = yield* spawnPeer("failover-iroh", [runDir, logFile])
      const grpcRx = yield* spawnPeer("failover-grpc", [runDir])
      const sender = yield* spawnPeer("failover-sender", [runDir, ...[options.probeIntervalMs, options.probeTimeoutMs, options.darkAfterMs].map(String)])
      const [i, g, s] = yield* Effect.all(
        [irohRx.next<ReadyMsg>("ready"), grpcRx.next<ReadyMsg>("ready"), sender.next<ReadyMsg>("ready")],
        { concurrency: 3 }
      )
      yield* introduce(irohRx, s.address)
      yield* introduce(grpcRx, s.address)
      const peer2: PeerAddress = { ...i.address, grpcAddress: g.address.grpcAddress }
      yield* introduce(sender, peer2)
      yield* sender.request({ type: "links" }, 25_000)
      yield* sender.send({ type: "start" })
      yield* irohRx.next<FirstMsg>("first", 20_000)
      yield* Effect.sleep(options.warmupMs + extraDelayMs)

      const killedAt = yield* irohRx.kill(options.signal)
      const irohExitMs = epochNow() - killedAt
      const first = yield* grpcRx.next<FirstGrpcMsg>("first", options.timeoutMs)
      yield* Effect.sleep(options.afterMs)
      const stop = yield* sender.request<SenderStopReply>({ type: "stop" }, 10_000)
      yield* Effect.sleep(200) // in-flight messages land
      const report = yield* grpcRx.request<GrpcReport>({ type: "report" }, 10_000)
      const iroh = yield* Effect.sync(() => parseIrohLog(readFileSync(logFile, "utf8")))

      const maxGrpc = report.ranges.reduce((m, [, hi]) => Math.max(m, hi), 0)
      const seen = new Uint8Array(maxGrpc + 1)
      let duplicates = 0
      for (const [lo, hi] of [...iroh.ranges, ...report.ranges]) {
        for (let k = Math.max(1, lo); k <= Math.min(hi, maxGrpc); k++) {
          if (seen[k]! > 0) duplicates++
          seen[k] = 1
        }
      }
      let lost = 0
      const lostRanges = new Ranges()
      for (let k = 1; k <= maxGrpc; k++) {
        if (seen[k] !== 0) continue
        lost++
        lostRanges.add(k)
      }
      const steadyFrom = first.receivedAt + 100
      const steady = summarize(report.samples.filter(([, , at]) => at >= steadyFrom).map(([, sentAt, at]) => at - sentAt))
      return {
        failoverMs: first.receivedAt - killedAt,
        killDelayMs: options.warmupMs + extraDelayMs,
        irohExitMs,
        fellBackMs: stop.fellBackAt === undefined ? Number.NaN : stop.fellBackAt - killedAt,
        fellBackCause: stop.fellBackCause ?? "no FellBack event",
        lost,
        lostRanges: lostRanges.list.slice(0, 5),
        duplicates,
        firstGrpcSentMs: first.sentAt - killedAt,
        firstGrpcLatencyMs: first.receivedAt - first.sentAt,
        firstGrpcIndex: first.index,
        lastIrohMs: iroh.lastAt - killedAt,
        lastIrohIndex: iroh.lastIndex,
        grpcLatencyP50Ms: steady.p50,
        grpcLatencyP99Ms: steady.p99,
        sent: stop.sent,
        rejected: stop.rejected,
        drops: stop.drops,
        disconnectedMs: (stop.events.find((e) => e.tag === "Disconnected" && e.at >= killedAt)?.at ?? Number.NaN) - killedAt
      } satisfies FailoverRun
    })
  )

export const runFailover = (options: FailoverOptions): Effect.Effect<FailoverResult> =>
  Effect.gen(function*() {
    const runs: Array<FailoverRunOutcome> = []
    for (let k = 1; k <= options.runs; k++) {
      // The sender's probe starts with the connection, so a fixed warm-up would kill at the same
      // point of its cycle every run: spread the runs over one probe interval instead.
      const extraDelayMs = Math.round(((k - 1) / options.runs) * options.probeIntervalMs)
      const outcome = yield* runOnce(options, join(options.keyDir, `run${k}`), extraDelayMs).pipe(
        Effect.map((run): FailoverRunOutcome => ({ _tag: "ok", run })),
        Effect.catch((error) => Effect.succeed<FailoverRunOutcome>({ _tag: "failed", error: error.message }))
      )
      if (outcome._tag === "ok") {
        const r = outcome.run
        process.stderr.write(
          `[bench]   run ${k}: first gRPC delivery ${r.failoverMs.toFixed(1)} ms after the kill, ` +
            `FellBack ${r.fellBackMs.toFixed(1)} ms, ${r.lost} lost\n`
        )
      } else {
        process.stderr.write(`[bench]   run ${k} failed: ${outcome.error.split("\n")[0]}\n`)
      }
      runs.push(outcome)
    }
    return {
      signal: options.signal,
      probeIntervalMs: options.probeIntervalMs,
      probeTimeoutMs: options.probeTimeoutMs,
      darkAfterMs: options.darkAfterMs,
      runs
    }
  })

/** Median and max of a measure over the successful runs. */
export const medianMax = (result: FailoverResult, f: (r: FailoverRun) => number): { median: number; max: number; n: number } => {
  const xs = result.runs.flatMap((o) => (o._tag === "ok" ? [f(o.run)] : [])).filter((x) => Number.isFinite(x))
  return { median: median(xs), max: xs.length === 0 ? Number.NaN : Math.max(...xs), n: xs.length }
}
