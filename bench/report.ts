/**
 * The Markdown report: a summary table (metric, value, target, pass/fail), then the detail of
 * each phase, the diagnostics that explain it (CPU, event-loop use and lag per process) and
 * any failures.
 */
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_BATCH_BYTES } from "../src/config/schema.ts"
import { FRAME_HEADER_LENGTH } from "../src/message/framing.ts"
import type { AppendRatioResult } from "./phases/append-ratio.ts"
import { type ClusterResult, type EtcdResult, versusEtcd, versusEtcdTable } from "./phases/cluster.ts"
import type { CodecResults } from "./phases/codec.ts"
import type { AppendKindResult, CompressedCeilingRound, SnapshotTransferResult } from "./phases/compression.ts"
import { type FailoverResult, type FailoverRun, medianMax } from "./phases/failover.ts"
import type { MachineInfo } from "./harness/machine.ts"
import type { PhaseOutcome } from "./harness/phase.ts"
import { type ProbeWindow, processCoresBusy } from "./harness/probe.ts"
import { RAW_FRAME_BYTES, RAW_READ_BYTES, type RawCeilingResult } from "./phases/raw-ceiling.ts"
import type { ThroughputResult } from "./phases/transport-throughput.ts"
import type { VoteLatencyResult, VotePhaseResult } from "./phases/vote-latency.ts"
import { median, perSecond } from "./harness/stats.ts"
import { BACKGROUND_LIMIT_CORES, quietMedian } from "./harness/windows.ts"
import { peerV8Flags } from "./harness/peer-processes.ts"

export interface BenchReport {
  readonly command: string
  readonly startedAt: Date
  readonly totalMs: number
  readonly machine: MachineInfo
  readonly codec: PhaseOutcome<CodecResults>
  readonly raw: PhaseOutcome<RawCeilingResult>
  /** The ceiling measured again after the transport phases; the single-run rows' ceiling pools both runs (`ceilingOf`). */
  readonly rawAfter: PhaseOutcome<RawCeilingResult>
  /** Append runs each between two raw runs: the ratio target's verdict (append-ratio.ts). */
  readonly appendRatio: PhaseOutcome<AppendRatioResult>
  readonly append: PhaseOutcome<ThroughputResult>
  readonly heartbeat: PhaseOutcome<ThroughputResult>
  /** The same throughput phases with both nodes in mode "grpc". */
  readonly appendGrpc: PhaseOutcome<ThroughputResult>
  readonly heartbeatGrpc: PhaseOutcome<ThroughputResult>
  readonly vote: PhaseOutcome<VoteLatencyResult>
  /** The vote phase with both nodes in mode "grpc". */
  readonly voteGrpc: PhaseOutcome<VoteLatencyResult>
  /** The vote phase again with other snapshot chunk sizes (informational). */
  readonly voteSweep: ReadonlyArray<PhaseOutcome<VoteLatencyResult>>
  /** Dual-mode failover, one outcome per variant (kill signal, probe interval). */
  readonly failover: ReadonlyArray<PhaseOutcome<FailoverResult>>
  /** Three node processes (`src/node`) per transport: Raft KV over HTTP, commits and leader failover. */
  readonly cluster: Readonly<Record<ClusterTransportName, PhaseOutcome<ClusterResult>>> & {
    /** etcd under the same client and workload, measured right before them. */
    readonly etcd: PhaseOutcome<EtcdResult>
  }
  /** Iroh compression: appends per payload kind on/off against the ceiling. */
  readonly compressedAppends: PhaseOutcome<ReadonlyArray<AppendKindResult>>
  /** A 20 MB KV snapshot's transfer time over Iroh, compression on and off. */
  readonly compressedSnapshot: PhaseOutcome<SnapshotTransferResult>
  /** The vote phase under a 20 MB KV JSON snapshot, compression on. */
  readonly voteCompressed: PhaseOutcome<VoteLatencyResult>
}

type ClusterTransportName = "iroh" | "grpc"
const CLUSTER_TRANSPORTS: ReadonlyArray<readonly [ClusterTransportName, string]> = [["iroh", "Iroh"], ["grpc", "gRPC"]]

/** The targets, in one place. */
const TARGETS = {
  heartbeatCodecNs: 2_000,
  appendRatioToCeiling: 0.85,
  heartbeatMsgsPerSec: 100_000,
  voteP99LoadFactor: 3,
  /** Compressed JSON appends over the raw ceiling's message rate at the same frame size. */
  jsonAppendsToCeiling: 2.5,
  /** Incompressible (base64) appends with compression on over off. */
  incompressibleOnToOff: 0.95,
  /** A 20 MB KV snapshot, uncompressed transfer time over compressed. */
  snapshotSpeedup: 2.5
} as const

type Verdict = "pass" | "FAIL" | "info" | "failed (phase)" | "skipped"

interface Row {
  readonly metric: string
  readonly value: string
  readonly target: string
  readonly verdict: Verdict
}

const num = (x: number, digits = 0): string =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "n/a"
const ms = (x: number): string => (Number.isFinite(x) ? `${num(x, x < 10 ? 2 : 1)} ms` : "n/a")
const pct = (x: number): string => `${num(x * 100, 1)}%`
const ns = (x: number): string => (x >= 1000 ? `${num(x / 1000, 2)} µs` : `${num(x, 0)} ns`)
const verdict = (ok: boolean): Verdict => (ok ? "pass" : "FAIL")
const cpuPct = (w: ProbeWindow): string => pct(processCoresBusy(w))
const firstLine = (text: string): string => text.split("\n")[0]!

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")

type NotOk = Exclude<PhaseOutcome<unknown>, { readonly _tag: "ok" }>

const failedRow = (metric: string, target: string, outcome: NotOk): Row =>
  outcome._tag === "skipped"
    ? { metric, value: "not run (BENCH_ONLY)", target, verdict: "skipped" }
    : { metric, value: `phase failed: ${firstLine(outcome.error)}`, target, verdict: "failed (phase)" }

const notOkText = (outcome: NotOk): string =>
  outcome._tag === "skipped" ? "Not run (BENCH_ONLY)." : `Failed: \`${firstLine(outcome.error)}\` (see Failures).`

/** A table cell for a phase without a value. */
const notOkCell = (outcome: NotOk): string => (outcome._tag === "skipped" ? "not run" : "failed")

const info = (metric: string, value: string, target = "-"): Row => ({ metric, value, target, verdict: "info" })

/** The summary rows of one phase, or one row saying it failed or did not run. */
const phaseRows = <A>(o: PhaseOutcome<A>, metric: string, target: string, rows: (value: A) => Array<Row>): Array<Row> =>
  o._tag === "ok" ? rows(o.value) : [failedRow(metric, target, o)]

const hbRateTarget = `≥ ${num(TARGETS.heartbeatMsgsPerSec)} msg/s`
const voteTarget = `p99 under load ≤ ${TARGETS.voteP99LoadFactor} × idle p99`

const heartbeatRows = (o: PhaseOutcome<ThroughputResult>, over: string, note: (h: ThroughputResult) => string) =>
  phaseRows(o, `heartbeats via RaftTransport${over}`, hbRateTarget, (h) => [{
    metric: `heartbeats via RaftTransport${over}`,
    value: `${num(h.msgsPerSec)} msg/s (${num(h.mbPerSec, 2)} MB/s framed${note(h)})`,
    target: hbRateTarget,
    verdict: verdict(h.msgsPerSec >= TARGETS.heartbeatMsgsPerSec)
  }])

/** How many times the idle p99 the loaded p99 is. */
const loadFactor = (v: VoteLatencyResult): string => num(v.load.rtt.p99 / v.idle.rtt.p99, 1)

/** Idle and loaded round trips of one vote run; `note` ends each row's parenthesis. */
const voteRttRows = (v: VoteLatencyResult, over: string, note: (phase: "idle" | "load") => string): Array<Row> => {
  const limit = TARGETS.voteP99LoadFactor * v.idle.rtt.p99
  const rtt = (p: VotePhaseResult) => `p50 ${ms(p.rtt.p50)}, p99 ${ms(p.rtt.p99)}`
  return [
    info(`vote round trip${over}, idle`, `${rtt(v.idle)} (${v.idle.rtt.count} votes, ${v.idle.lost} lost${note("idle")})`),
    {
      metric: `vote round trip${over}, ${num(v.snapshotBytes / 1e6)} MB snapshot in flight`,
      value: `${rtt(v.load)} (${loadFactor(v)} × idle; ${v.load.rtt.count} votes, ${v.load.lost} lost${note("load")})`,
      target: `${voteTarget} (≤ ${ms(limit)})`,
      verdict: verdict(v.load.rtt.p99 <= limit && v.load.lost === 0 && v.idle.lost === 0)
    }
  ]
}

const clusterFailover = (c: ClusterResult): string =>
  c.failoverMs.length === 0 ? "not run (BENCH_CPU_PROF)" : `median ${ms(median(c.failoverMs))}, max ${ms(Math.max(...c.failoverMs))}`

/** ours / etcd for each figure, in one row (a ratio measured in one run is the figure). */
const etcdRatioRows = (etcd: PhaseOutcome<EtcdResult>, label: string, c: ClusterResult): Array<Row> => {
  if (etcd._tag !== "ok" || etcd.value._tag !== "measured") return []
  return [info(
    `cluster over ${label} / etcd (same run): puts/s, p50, p99, CPU per put (1 and 64 clients), idle CPU`,
    versusEtcd(etcd.value, c).map((v) => `${v.metric} ${v.ratio.toFixed(2)}x`).join("; ")
  )]
}

const failoverNotRun = (r: BenchReport): boolean => r.failover.every((o) => o._tag === "skipped")

const summaryRows = (r: BenchReport): Array<Row> => {
  const codecTarget = `< ${TARGETS.heartbeatCodecNs / 1000} µs (≥ 500k msg/s)`
  const codec = phaseRows(r.codec, "heartbeat encode+decode", codecTarget, ({ results }) => {
    const hb = results.find((x) => x.name.startsWith("heartbeat"))
    const ap = results.find((x) => x.name.startsWith("append"))
    return [
      ...(hb === undefined ? [] : [{
        metric: "heartbeat encode+decode",
        value: `${ns(hb.nsPerOp)}/op (${num(hb.opsPerSec)} msg/s)`,
        target: codecTarget,
        verdict: verdict(hb.nsPerOp < TARGETS.heartbeatCodecNs)
      }]),
      ...(ap === undefined ? [] : [info("100 B append encode+decode", `${ns(ap.nsPerOp)}/op (${num(ap.opsPerSec)} msg/s)`)])
    ]
  })

  const ceiling = ceilingOf(r)
  const rawRuns = [r.raw, r.rawAfter].filter((o) => o._tag === "ok").map((o) => `${num(o.value.mbPerSec, 2)}`)
  const raw = r.raw._tag !== "ok" && r.rawAfter._tag !== "ok"
    ? failedRow("raw Iroh ceiling", "reference", r.raw)
    : info(
      `raw Iroh ceiling (1 uni stream, ${RAW_FRAME_BYTES / 1024} KiB writes)`,
      `${num(ceiling, 2)} MB/s (runs: ${rawRuns.join(" and ")})`,
      "reference"
    )

  const ratioTarget = `≥ ${pct(TARGETS.appendRatioToCeiling)} of the raw ceiling`
  const paired = r.appendRatio._tag === "ok" ? r.appendRatio.value : undefined
  const append = phaseRows(r.append, "100 B appends via RaftTransport", ratioTarget, (a) => {
    const ratio = a.mbPerSec / ceiling
    return [{
      metric: "100 B appends via RaftTransport",
      value: `${num(a.msgsPerSec)} msg/s, ${num(a.mbPerSec, 2)} MB/s framed, ${Number.isFinite(ratio) ? pct(ratio) : "n/a"} of ceiling` +
        (paired === undefined ? "" : " (one run against the pooled ceiling; the verdict is the paired ratio below)"),
      target: paired === undefined ? ratioTarget : "-",
      // Without a ceiling (raw phases failed or skipped) there is nothing to compare against.
      verdict: paired !== undefined || !Number.isFinite(ratio) ? "info" : verdict(ratio >= TARGETS.appendRatioToCeiling)
    }]
  })
  const appendPaired = phaseRows(r.appendRatio, "100 B appends vs the adjacent raw runs", ratioTarget, (p) => [{
    metric: "100 B appends vs the adjacent raw runs (median of the pairs)",
    value: `${pct(p.medianRatio)} (pairs: ${p.pairs.map((x) => pct(x.ratio)).join(", ")})`,
    target: ratioTarget,
    verdict: verdict(p.medianRatio >= TARGETS.appendRatioToCeiling)
  }])

  const vsIroh = (grpc: number, iroh: PhaseOutcome<ThroughputResult>): string =>
    iroh._tag === "ok" ? `; ${num(grpc / iroh.value.msgsPerSec, 2)} × Iroh's ${num(iroh.value.msgsPerSec)}` : ""
  const appendGrpc = phaseRows(r.appendGrpc, "100 B appends via RaftTransport over gRPC", "-", (a) => [
    info(
      "100 B appends via RaftTransport over gRPC",
      `${num(a.msgsPerSec)} msg/s, ${num(a.mbPerSec, 2)} MB/s framed${vsIroh(a.msgsPerSec, r.append)}`,
      "- (the ceiling is Iroh's)"
    )
  ])

  const vote = phaseRows(r.vote, "vote round trip under snapshot load", voteTarget, (v) => [
    ...voteRttRows(v, "", () => ""),
    info(
      "event-loop lag p99 during snapshot",
      `candidate (sender) ${ms(v.load.candidate.lag.p99)}, voter (receiver) ${ms(v.load.voter.lag.p99)}`
    )
  ])
  const voteGrpc = phaseRows(r.voteGrpc, "vote round trip over gRPC", voteTarget, (g) =>
    voteRttRows(g, " over gRPC", (phase) => {
      const pace = phase === "load" ? `; snapshots ${snapshotPaces(g)}: ${num(g.load.snapshotMbPerSec, 1)} MB/s` : ""
      const iroh = r.vote._tag === "ok" ? r.vote.value[phase].rtt : undefined
      return pace + (iroh === undefined ? "" : `; Iroh p50 ${ms(iroh.p50)}, p99 ${ms(iroh.p99)}`)
    }))

  const failover = failoverNotRun(r)
    ? [{ metric: "failover (dual mode)", value: "not run (BENCH_ONLY)", target: "-", verdict: "skipped" } satisfies Row]
    : r.failover.flatMap((o) =>
      phaseRows(o, "failover (dual mode)", "-", (f) => {
        const first = medianMax(f, (x) => x.failoverMs)
        const fell = medianMax(f, (x) => x.fellBackMs)
        const lost = medianMax(f, (x) => x.lost)
        return [{
          metric: `failover, ${variantLabel(f)}: kill → first delivery over gRPC`,
          value: first.n === 0
            ? `no run succeeded (${f.runs.length} tried)`
            : `median ${ms(first.median)}, max ${ms(first.max)}; FellBack median ${ms(fell.median)}; ` +
              `lost median ${num(lost.median)}, max ${num(lost.max)} (${first.n}/${f.runs.length} runs)`,
          target: "-",
          verdict: first.n === f.runs.length ? "info" : "failed (phase)"
        }]
      })
    )

  const cluster = CLUSTER_TRANSPORTS.flatMap(([key, label]) =>
    phaseRows(r.cluster[key], `cluster over ${label} (3 node processes)`, "-", (c) => [
      info(
        `cluster over ${label} (3 node processes): commits/s, PUT latency p50 / p99`,
        c.loads.map((l) =>
          `${l.clients} client${l.clients === 1 ? "" : "s"}: ${num(l.commitsPerSec)}/s, ${ms(l.p50)} / ${ms(l.p99)}` +
          (l.errors > 0 ? ` (${num(l.errors)} errors)` : "")
        ).join("; ")
      ),
      info(
        `cluster over ${label}: failover, leader SIGKILL → a new leader commits`,
        `${clusterFailover(c)} (${c.failoverMs.length} runs)`
      ),
      ...etcdRatioRows(r.cluster.etcd, label, c)
    ])
  )

  const compression = phaseRows(r.compressedAppends, "Iroh compression, appends", "see §9", (appends) => {
    const json = appends.find((a) => a.payload === "json")
    const base64 = appends.find((a) => a.payload === "base64")
    return [
      ...(json === undefined ? [] : [{
        metric: "JSON appends over Iroh, compressed, vs the raw ceiling's message rate",
        value: `median of ${json.rounds.length} rounds ${num(json.onToCeiling, 2)} × the ceiling (${
          json.rounds.map((x) => num(x.onToCeiling, 2)).join(", ")
        }; off: ${num(json.offToCeiling, 2)} ×)`,
        target: `≥ ${TARGETS.jsonAppendsToCeiling} ×`,
        verdict: verdict(json.onToCeiling >= TARGETS.jsonAppendsToCeiling)
      }]),
      ...(json?.compressedCeiling === undefined ? [] : [info(
        "compressed ceiling: JSON appends as our wire carries them, zstd 1 in the loop, bare binding, vs the raw ceiling",
        `median of ${json.rounds.length} rounds ${num(json.compressedCeiling.compressingToCeiling, 2)} × the ceiling (${
          json.rounds.map((x) => num(x.compressedCeiling?.compressingToCeiling ?? Number.NaN, 2)).join(", ")
        }; precompressed: ${num(json.compressedCeiling.precompressedToCeiling, 2)} ×); compressed appends over our transport reach ${
          num(json.compressedCeiling.onToCompressing, 2)
        } of it`
      )]),
      ...(base64 === undefined ? [] : [{
        metric: "incompressible (base64-random) appends, compression on vs off",
        value: `median of ${base64.rounds.length} rounds ${num(base64.onToOff, 2)} × (${base64.rounds.map((x) => num(x.onToOff, 2)).join(", ")})`,
        target: `≥ ${TARGETS.incompressibleOnToOff} ×`,
        verdict: verdict(base64.onToOff >= TARGETS.incompressibleOnToOff)
      }])
    ]
  })
  const snapshotTarget = `≥ ${TARGETS.snapshotSpeedup} ×`
  const compressedSnapshot = phaseRows(r.compressedSnapshot, "KV snapshot over Iroh, off vs on", snapshotTarget, (s) => [{
    metric: `${num(s.snapshotBytes / 1e6)} MB KV snapshot over Iroh, off vs on`,
    value: `median ${ms(median(s.offMs))} vs ${ms(median(s.onMs))} = ${num(s.speedup, 2)} × faster`,
    target: snapshotTarget,
    verdict: verdict(s.speedup >= TARGETS.snapshotSpeedup)
  }])
  const voteCompressed = phaseRows(r.voteCompressed, "vote round trip, compressed KV snapshot", voteTarget, (v) =>
    voteRttRows(v, " (compressed 20 MB KV JSON snapshot)", () => ""))

  return [
    ...codec,
    raw,
    ...append,
    ...appendPaired,
    ...heartbeatRows(r.heartbeat, "", () => ""),
    ...appendGrpc,
    ...heartbeatRows(r.heartbeatGrpc, " over gRPC", (h) => vsIroh(h.msgsPerSec, r.heartbeat)),
    ...vote,
    ...voteGrpc,
    ...failover,
    ...cluster,
    ...compression,
    ...compressedSnapshot,
    ...voteCompressed
  ]
}

/**
 * The compressed ceiling's rounds (`phases/compressed-ceiling.ts`): what the binding and zstd
 * alone carry, measured between the same raw runs as the on/off runs.
 */
const compressedCeilingText = (appends: ReadonlyArray<AppendKindResult>): string => {
  const measured = appends.filter((a) => a.compressedCeiling !== undefined)
  if (measured.length === 0) return ""
  return [
    "Compressed ceiling: the raw ceiling's bare endpoints carrying the kind's appends as our version 2 wire does " +
    `(full writes of up to ${DEFAULT_MAX_BATCH} framed appends and ${DEFAULT_MAX_BATCH_BYTES / 1024} KiB, one zstd level 1 block each), ` +
    "the receiver inflating every block and counting " +
    "its frames; \"compressing\" compresses each write in the sender's loop, \"precompressed\" cycles blocks compressed " +
    "once. Ratios to the same rounds' ceiling message rate; \"on / compressing\" is our transport's share of that bound.",
    "",
    table(
      [
        "payload",
        "wire B/msg",
        "compressing / ceiling",
        "precompressed / ceiling",
        "on / compressing",
        "ceiling msg/s (median)",
        "compressing msg/s (median)",
        "precompressed msg/s (median)"
      ],
      measured.map((a) => {
        const c = a.compressedCeiling!
        const rounds = (f: (r: CompressedCeilingRound) => number) =>
          a.rounds.map((r) => num(r.compressedCeiling === undefined ? Number.NaN : f(r.compressedCeiling), 2)).join(", ")
        return [
          a.payload,
          num(c.wireBytesPerMessage, 1),
          `**${num(c.compressingToCeiling, 2)}** (${rounds((x) => x.compressingToCeiling)})`,
          `${num(c.precompressedToCeiling, 2)} (${rounds((x) => x.precompressedToCeiling)})`,
          `**${num(c.onToCompressing, 2)}** (${rounds((x) => x.onToCompressing)})`,
          num(median(a.rounds.map((r) => r.ceilingMsgsPerSec))),
          num(c.compressingMsgsPerSec),
          num(c.precompressedMsgsPerSec)
        ]
      })
    )
  ].join("\n")
}

const compressionSection = (r: BenchReport, cores: number): string => {
  const appends = r.compressedAppends
  const snapshot = r.compressedSnapshot
  return [
    "Appends of each payload kind (`bench/phases/payloads.ts`: 16-byte request id + ~100 B value) with " +
    "`compression.algorithm` \"zstd\" and \"none\", in rounds: each round runs a kind's on and off runs between two raw " +
    "ceiling runs. The ceiling's message rate is the mean of those raw runs' MB/s over the mean uncompressed framed bytes " +
    "per message. Medians over the rounds in bold, each round in brackets.",
    "",
    appends._tag !== "ok" ? notOkText(appends) : table(
      ["payload", "framed B/msg", "rounds: on / ceiling", "off / ceiling", "on / off", "on msg/s (median)", "off msg/s (median)", "raw MB/s"],
      appends.value.map((a) => [
        a.payload,
        num(a.framedBytesPerMessage, 1),
        `**${num(a.onToCeiling, 2)}** (${a.rounds.map((r) => num(r.onToCeiling, 2)).join(", ")})`,
        `${num(a.offToCeiling, 2)} (${a.rounds.map((r) => num(r.offToCeiling, 2)).join(", ")})`,
        `**${num(a.onToOff, 2)}** (${a.rounds.map((r) => num(r.onToOff, 2)).join(", ")})`,
        num(a.onMsgsPerSec),
        num(a.offMsgsPerSec),
        a.rounds.map((r) => `${num(r.rawBefore, 1)}-${num(r.rawAfter, 1)}`).join(", ")
      ])
    ),
    "",
    appends._tag !== "ok" ? "" : compressedCeilingText(appends.value),
    "",
    snapshot._tag !== "ok" ? notOkText(snapshot) :
      `Snapshot transfer, ${num(snapshot.value.snapshotBytes / 1e6)} MB of KV JSON, send to delivery (pairs of processes alternate on, off): ` +
      `on ${snapshot.value.onMs.map(ms).join(", ")}; off ${snapshot.value.offMs.map(ms).join(", ")}; ` +
      `median off / median on = ${num(snapshot.value.speedup, 2)} ×.`,
    "",
    "Vote latency under the compressed KV snapshot:",
    "",
    voteSection(r.voteCompressed, cores)
  ].join("\n")
}

const variantLabel = (f: FailoverResult): string =>
  `${f.signal === "SIGTERM" ? "SIGTERM (graceful close)" : "SIGKILL (dark path)"}, ` +
  (f.darkAfterMs > 0
    ? `dark watch ${f.darkAfterMs} ms, probes every ${f.probeIntervalMs} ms`
    : `probes alone: every ${f.probeIntervalMs} ms, timeout ${f.probeTimeoutMs} ms`)

/** The ceiling for the single-run rows (the target's verdict is `appendRatio`): the median of the undisturbed windows of both raw runs. */
const ceilingOf = (r: BenchReport): number => {
  const windows = [r.raw, r.rawAfter].flatMap((o) => (o._tag === "ok" ? o.value.windows : []))
  return windows.length === 0 ? Number.NaN : quietMedian(windows, (w) => w.mbPerSec)
}

interface Background {
  readonly backgroundCores: number
}

const windowList = <W extends Background>(windows: ReadonlyArray<W>, rate: (w: W) => number, digits: number) =>
  windows.map((w) =>
    `${num(rate(w), digits)}${w.backgroundCores > BACKGROUND_LIMIT_CORES ? ` (background ${num(w.backgroundCores, 2)} cores)` : ""}`
  ).join(", ")

/** Phases whose measurement overlapped other work on the machine. */
const backgroundNotes = (r: BenchReport): Array<string> => {
  const rates = (o: PhaseOutcome<{ readonly windows: ReadonlyArray<Background> }>) => (o._tag === "ok" ? o.value.windows : [])
  // A vote phase is one window each: idle and load.
  const votes = (o: PhaseOutcome<VoteLatencyResult>): Array<Background> =>
    o._tag !== "ok" ? [] : [o.value.idle, o.value.load].map((p) => ({
      backgroundCores: Math.max(0, p.machineCores - processCoresBusy(p.candidate) - processCoresBusy(p.voter))
    }))
  const measured: Array<readonly [string, ReadonlyArray<Background>]> = [
    ["raw ceiling (before)", rates(r.raw)],
    ["raw ceiling (after)", rates(r.rawAfter)],
    ["appends", rates(r.append)],
    ["heartbeats", rates(r.heartbeat)],
    ["appends over gRPC", rates(r.appendGrpc)],
    ["heartbeats over gRPC", rates(r.heartbeatGrpc)],
    ["vote latency", votes(r.vote)],
    ["vote latency over gRPC", votes(r.voteGrpc)]
  ]
  return measured.flatMap(([name, windows]) => {
    const worst = Math.max(0, ...windows.map((w) => w.backgroundCores))
    const hit = windows.filter((w) => w.backgroundCores > BACKGROUND_LIMIT_CORES).length
    return hit > 0 ? [`${name}: ${hit} of ${windows.length} windows had other processes using up to ${num(worst, 2)} cores`] : []
  })
}

const loadLine = (machineCores: number, windows: ReadonlyArray<ProbeWindow>, cores: number): string => {
  const ours = windows.reduce((n, w) => n + processCoresBusy(w), 0)
  return `Machine CPU during the window: ${num(machineCores, 2)} of ${cores} cores busy; ` +
    `the benchmark's processes ${num(ours, 2)}, everything else ≈ ${num(Math.max(0, machineCores - ours), 2)}.`
}

/** One process's row of a process table. */
const processRow = (label: string, w: ProbeWindow): Array<string> => [
  label,
  cpuPct(w),
  pct(w.elu),
  ms(w.lag.p50),
  ms(w.lag.p99),
  ms(w.lag.max)
]

const processTable = (rows: ReadonlyArray<ReadonlyArray<string>>) =>
  table(["process", "CPU (all threads, % of one core)", "main-thread busy (ELU)", "loop lag p50", "loop lag p99", "loop lag max"], rows)

const codecSection = (o: PhaseOutcome<CodecResults>): string => {
  if (o._tag !== "ok") return notOkText(o)
  const { results, heartbeatBytes, appendBytes, batchMessages } = o.value
  const rows = results.map((x) => [
    x.name,
    ns(x.nsPerOp),
    num(x.opsPerSec),
    x.bytes !== undefined ? num(x.nsPerOp / x.bytes, 2) : "-",
    x.bytes !== undefined ? num((x.bytes / x.nsPerOp) * 1e3, 0) : "-",
    `±${num(x.rmePercent, 1)}%`
  ])
  return [
    `Heartbeat is ${heartbeatBytes} B encoded, the 100 B append ${appendBytes} B. The 16 KiB batch is ${batchMessages} append frames; ` +
    "`Array.from` and the loop convert the already-framed `Uint8Array`, `encodeFramesToArray` frames and converts in one pass.",
    "",
    table(["operation", "time/op", "ops/s", "ns/byte", "MB/s", "rme"], rows)
  ].join("\n")
}

interface Flow {
  readonly sender: ProbeWindow
  readonly receiver: ProbeWindow
  readonly machineCores: number
}

/** A sender → receiver phase: heading, `body`, both processes' probes and the machine's load. */
const flowSection = <A extends Flow>(label: string, o: PhaseOutcome<A>, cores: number, body: (value: A) => string): string => {
  if (o._tag !== "ok") return `#### ${label}\n\n${notOkText(o)}`
  const v = o.value
  return [
    `#### ${label}`,
    "",
    body(v),
    "",
    processTable([processRow("sender", v.sender), processRow("receiver", v.receiver)]),
    "",
    loadLine(v.machineCores, [v.sender, v.receiver], cores)
  ].join("\n")
}

const rawSection = (label: string, o: PhaseOutcome<RawCeilingResult>, cores: number): string =>
  flowSection(label, o, cores, (r) =>
    `${num(r.mbPerSec, 2)} MB/s received (median of the undisturbed windows; all ${r.windows.length}: ` +
    `${windowList(r.windows, (w) => w.mbPerSec, 2)} MB/s; ` +
    `${num(r.bytes)} bytes in ${ms(r.windowMs)}). ` +
    `Synchronous time inside \`writeAll\` (the \`Array<number>\` copy on the JS thread): ${num(r.writeSyncNsPerByte, 1)} ns/byte ` +
    `(${ms((r.writeSyncNsPerByte * RAW_FRAME_BYTES) / 1e6)} per ${RAW_FRAME_BYTES / 1024} KiB write).`)

const appendRatioSection = (o: PhaseOutcome<AppendRatioResult>): string => {
  if (o._tag !== "ok") return notOkText(o)
  return [
    "Raw and append runs alternate (raw, append, raw, ...); each append run's framed MB/s is divided by the mean of " +
    "the raw runs just before and after it, so both sides of each ratio see the machine as it was then. The median " +
    "ratio is the target's verdict.",
    "",
    table(
      ["pair", "raw before MB/s", "append msg/s", "append MB/s framed", "raw after MB/s", "ratio"],
      o.value.pairs.map((p, i) => [
        String(i + 1),
        num(p.rawBefore, 2),
        num(p.appendMsgsPerSec),
        num(p.appendMbPerSec, 2),
        num(p.rawAfter, 2),
        pct(p.ratio)
      ])
    ),
    "",
    `Median ratio: ${pct(o.value.medianRatio)}.`
  ].join("\n")
}

const throughputSection = (
  label: string,
  o: PhaseOutcome<ThroughputResult>,
  ceiling: number,
  cores: number,
  noCeiling = "n/a (no ceiling)"
): string =>
  flowSection(label, o, cores, (t) =>
    table(["measure", "value"], [
      ["received (receiver count, median undisturbed window)", `${num(t.msgsPerSec)} msg/s`],
      [`each ${num(t.windowMs / t.windows.length / 1000, 1)} s window`, `${windowList(t.windows, (w) => w.msgsPerSec, 0)} msg/s`],
      ["framed payload", `${num(t.mbPerSec, 2)} MB/s (${t.framedBytesPerMessage} B per message incl. ${FRAME_HEADER_LENGTH} B length)`],
      ["ratio to raw ceiling", Number.isFinite(ceiling) ? pct(t.mbPerSec / ceiling) : noCeiling],
      ["accepted by `send`", `${num(perSecond(t.sentInWindow, t.sender.ms))} msg/s`],
      ["`MessageDropped` (queue_full) in window", num(t.rejectedInWindow)],
      ["sender back-offs (queue at half capacity, slept 1 ms)", num(t.backoffsInWindow)],
      ["link writes", `${num(t.writesPerSec)} /s, mean ${num(t.meanBatch, 1)} messages per write`],
      ["unexpected message types at receiver", num(t.unexpected)]
    ]))

const votePhaseRows = (label: string, p: VotePhaseResult): Array<string> => [
  label,
  ms(p.rtt.p50),
  ms(p.rtt.p90),
  ms(p.rtt.p99),
  ms(p.rtt.max),
  `${ms(p.forward.p50)} / ${ms(p.forward.p99)}`,
  `${ms(p.back.p50)} / ${ms(p.back.p99)}`,
  `${p.rtt.count} / ${p.lost}`,
  ms(p.candidate.lag.p99),
  ms(p.voter.lag.p99),
  num(p.snapshotMbPerSec, 2)
]

const bytesPerSec = (n: number): string => `${num(n / 1e6, 1)} MB/s`

/** The snapshot pace the measured transport ran with, and its cap while an election is under way. */
const snapshotPaces = (v: VoteLatencyResult): string => {
  const normal = v.snapshotBytesPerSec === 0 ? "unpaced" : `paced at ${bytesPerSec(v.snapshotBytesPerSec)}`
  const cap = v.snapshotElectionBytesPerSec
  return cap === 0 || (v.snapshotBytesPerSec !== 0 && cap >= v.snapshotBytesPerSec)
    ? `${normal}, no lower cap during an election`
    : `${normal}, capped at ${bytesPerSec(cap)} during an election`
}

const voteSection = (o: PhaseOutcome<VoteLatencyResult>, cores: number): string => {
  if (o._tag !== "ok") return notOkText(o)
  const v = o.value
  return [
    `${v.votes} RequestVotes per phase on a ${v.spacingMs} ms cadence (the load phase runs at least that many and until ` +
    `the candidate has written one whole snapshot, then 500 ms more, so it covers a snapshot's end: ${v.load.rtt.count} votes); ` +
    `the voter answers each with a RequestVoteResponse. While votes flow an election is under way, so the ` +
    `\`${v.mode === "grpc" ? "grpc" : "iroh"}_snapshot_election_bytes_per_sec\` cap applies: snapshots ${snapshotPaces(v)}. ` +
    `Snapshot chunks: ${num(v.snapshotChunkBytes)} B (\`batching.snapshot_chunk_bytes\`). ` +
    `Load phase: a ${num(v.snapshotBytes / 1e6)} MB Snapshot queued 100 ms before the first vote, another queued whenever the ` +
    `snapshot queue empties (${v.load.snapshotsQueued} queued, ${v.load.snapshotsDelivered} delivered whole during the phase).`,
    "",
    table(
      [
        "phase",
        "rtt p50",
        "rtt p90",
        "rtt p99",
        "rtt max",
        "forward p50 / p99",
        "back p50 / p99",
        "answered / lost",
        "lag p99 candidate",
        "lag p99 voter",
        "snapshot stream MB/s"
      ],
      [votePhaseRows("idle", v.idle), votePhaseRows("snapshot in flight", v.load)]
    ),
    "",
    "forward: candidate `send` → vote out of the voter's `receiveBatch`; back: that → answer out of the candidate's " +
    "`receiveBatch` (voter turnaround included). Cross-process times use `performance.timeOrigin + performance.now()`.",
    "",
    processTable([
      processRow("candidate, idle", v.idle.candidate),
      processRow("voter, idle", v.idle.voter),
      processRow("candidate (snapshot sender), load", v.load.candidate),
      processRow("voter (snapshot receiver), load", v.load.voter)
    ]),
    "",
    `Idle phase: ${loadLine(v.idle.machineCores, [v.idle.candidate, v.idle.voter], cores)}`,
    `Load phase: ${loadLine(v.load.machineCores, [v.load.candidate, v.load.voter], cores)}`
  ].join("\n")
}

const sweepSection = (r: BenchReport): string => {
  const runs = [r.vote, ...r.voteSweep].filter((o) => o._tag === "ok").map((o) => o.value)
  const notRun = r.voteSweep.filter((o) => o._tag !== "ok").length
  if (runs.length === 0) return "Not run."
  runs.sort((a, b) => a.snapshotChunkBytes - b.snapshotChunkBytes)
  return [
    "Same vote phase, same 20 MB snapshot, with `batching.snapshot_chunk_bytes` varied (the default run is in the table too). " +
    "Each row is a separate pair of processes with its own idle baseline.",
    "",
    table(
      ["snapshot chunk", "idle p99", "load p50", "load p99", "load p99 / idle p99", "forward p99", "back p99", "lag p99 candidate", "lag p99 voter", "lag max candidate / voter", "snapshot stream MB/s"],
      runs.map((v) => [
        `${num(v.snapshotChunkBytes / 1024)} KiB`,
        ms(v.idle.rtt.p99),
        ms(v.load.rtt.p50),
        ms(v.load.rtt.p99),
        `${loadFactor(v)} ×`,
        ms(v.load.forward.p99),
        ms(v.load.back.p99),
        ms(v.load.candidate.lag.p99),
        ms(v.load.voter.lag.p99),
        `${ms(v.load.candidate.lag.max)} / ${ms(v.load.voter.lag.max)}`,
        num(v.load.snapshotMbPerSec, 2)
      ])
    ),
    ...(notRun > 0 ? ["", `${notRun} sweep run(s) failed or were skipped (see Failures).`] : [])
  ].join("\n")
}

const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${num(a / b, 2)} ×` : "n/a")

const grpcThroughputSection = (r: BenchReport, cores: number): string => {
  const pairs: Array<[string, PhaseOutcome<ThroughputResult>, PhaseOutcome<ThroughputResult>]> = [
    ["100 B appends", r.append, r.appendGrpc],
    ["heartbeats", r.heartbeat, r.heartbeatGrpc]
  ]
  const rows: Array<Array<string>> = []
  for (const [label, iroh, grpc] of pairs) {
    const cell = (o: PhaseOutcome<ThroughputResult>, f: (t: ThroughputResult) => string) =>
      o._tag === "ok" ? f(o.value) : notOkCell(o)
    const line = (measure: string, f: (t: ThroughputResult) => string, x?: (t: ThroughputResult) => number) => [
      `${label}: ${measure}`,
      cell(iroh, f),
      cell(grpc, f),
      x !== undefined && iroh._tag === "ok" && grpc._tag === "ok" ? ratio(x(grpc.value), x(iroh.value)) : "-"
    ]
    rows.push(
      line("msg/s (receiver)", (t) => num(t.msgsPerSec), (t) => t.msgsPerSec),
      line("MB/s framed", (t) => num(t.mbPerSec, 2), (t) => t.mbPerSec),
      line("messages per link write", (t) => num(t.meanBatch, 1), (t) => t.meanBatch),
      line("sender CPU / receiver CPU (% of a core)", (t) => `${cpuPct(t.sender)} / ${cpuPct(t.receiver)}`),
      line(
        "receiver CPU µs per message",
        (t) => num((processCoresBusy(t.receiver) * 1e6) / t.msgsPerSec, 2),
        (t) => processCoresBusy(t.receiver) / t.msgsPerSec
      )
    )
  }
  return [
    "The same two throughput phases with both nodes in `mode = \"grpc\"` (loopback, plaintext, shipped defaults): one " +
    "long-lived client-streaming call per class, each link write one `MessageBatch`. MB/s counts the same framed size as " +
    "Iroh (length prefix + protobuf) so the columns compare messages, not wire bytes.",
    "",
    table(["measure", "Iroh", "gRPC", "gRPC / Iroh"], rows),
    "",
    throughputSection("100 B appends over gRPC", r.appendGrpc, Number.NaN, cores, "n/a (the raw ceiling is Iroh's)"),
    "",
    throughputSection("Heartbeats over gRPC", r.heartbeatGrpc, Number.NaN, cores, "n/a (the raw ceiling is Iroh's)")
  ].join("\n")
}

const grpcVoteSection = (r: BenchReport, cores: number): string => {
  const runs: Array<[string, PhaseOutcome<VoteLatencyResult>]> = [["Iroh", r.vote], ["gRPC", r.voteGrpc]]
  const header = ["transport", "idle p50", "idle p99", "load p50", "load p99", "load p99 / idle p99", "lost idle / load", "lag p99 candidate / voter (load)", "CPU candidate / voter (load)", "snapshot stream MB/s"]
  const rows = runs.map(([label, o]) => {
    if (o._tag !== "ok") return [label, notOkCell(o), ...header.slice(2).map(() => "")]
    const v = o.value
    return [
      label,
      ms(v.idle.rtt.p50),
      ms(v.idle.rtt.p99),
      ms(v.load.rtt.p50),
      ms(v.load.rtt.p99),
      `${loadFactor(v)} ×`,
      `${v.idle.lost} / ${v.load.lost}`,
      `${ms(v.load.candidate.lag.p99)} / ${ms(v.load.voter.lag.p99)}`,
      `${cpuPct(v.load.candidate)} / ${cpuPct(v.load.voter)}`,
      num(v.load.snapshotMbPerSec, 2)
    ]
  })
  return [
    "The vote phase with both nodes in `mode = \"grpc\"`: same cadence, same 20 MB snapshot kept in flight. Snapshots over " +
    "gRPC are unpaced by default (`grpc_snapshot_bytes_per_sec` = 0) but, like Iroh's, capped while an election is under way " +
    "(`grpc_snapshot_election_bytes_per_sec`), and the votes of this phase keep an election under way.",
    "",
    table(header, rows),
    "",
    "#### gRPC detail",
    "",
    voteSection(r.voteGrpc, cores)
  ].join("\n")
}

const signed = (x: number): string => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${ms(Math.abs(x))}` : "n/a")

const failoverSection = (r: BenchReport): string => {
  const intro = [
    "Two dual-mode nodes in separate processes, laid out as in `test/dual.test.ts`: the sender (node 1, `mode = \"dual\"`, " +
    "default `always_iroh` strategy, `fallback_to_grpc = true`) and peer 2 as two processes sharing raft id 2, an Iroh-only " +
    "node with a key file and a gRPC-only node. The sender's peer-table entry for 2 has the first one's endpoint id and " +
    "address and the second one's gRPC address. The sender sends a 100 B append every 1 ms (absolute schedule), index " +
    "1, 2, 3, ..., with its send time in `term`. After 1 s of steady delivery over Iroh the Iroh process is killed at T: " +
    "SIGTERM closes its scope (the endpoint closes its connections), SIGKILL leaves a dark path that the sender detects: " +
    "by the dark watch (`strategy.dark_after_ms`: nothing received that long after a send) or, with it off, by its probes " +
    "(`strategy.probe_interval_ms`; three pings unanswered within `probe_timeout_ms` close the link).",
    "",
    "- **first gRPC delivery**: T → the first message out of the gRPC node's `receiveBatch`.",
    "- **FellBack**: T → the sender's `FellBack` event on `transport.events`.",
    "- **lost**: indices below the last one delivered over gRPC that neither half of peer 2 received (the Iroh half logs " +
    "what it received to a file with `writeSync`, which survives SIGKILL).",
    "- **sender `link_failed`**: what the sender itself counted as lost (`raft_transport_messages_dropped_total`, appends).",
    "",
    "Each variant runs several times (the runs column), with fresh processes every run. The sender's probe cycle starts " +
    "when its link connects, so run k of n kills (k − 1)/n of a probe interval later than run 1: the runs sample " +
    "different points of the cycle instead of the same one. Times are epoch ms " +
    "(`performance.timeOrigin + performance.now()`) across processes."
  ]
  if (failoverNotRun(r)) return [...intro, "", "Not run (BENCH_ONLY)."].join("\n")
  const results = r.failover.filter((o) => o._tag === "ok").map((o) => o.value)
  const mm = (f: FailoverResult, g: (x: FailoverRun) => number, fmt: (x: number) => string) => {
    const m = medianMax(f, g)
    return m.n === 0 ? "n/a" : `${fmt(m.median)} / ${fmt(m.max)}`
  }
  const summary = table(
    ["variant", "runs ok", "first gRPC delivery (median / max)", "FellBack (median / max)", "lost (median / max)", "sender link_failed (median / max)", "first gRPC message latency (median / max)", "gRPC latency p50 after"],
    results.map((f) => [
      variantLabel(f),
      `${f.runs.filter((x) => x._tag === "ok").length} / ${f.runs.length}`,
      mm(f, (x) => x.failoverMs, ms),
      mm(f, (x) => x.fellBackMs, ms),
      mm(f, (x) => x.lost, (x) => num(x)),
      mm(f, (x) => x.drops["link_failed"] ?? 0, (x) => num(x)),
      mm(f, (x) => x.firstGrpcLatencyMs, ms),
      mm(f, (x) => x.grpcLatencyP50Ms, ms)
    ])
  )
  const perRunHeader = ["variant", "run", "kill at (after the first Iroh delivery)", "first gRPC delivery", "FellBack", "lost (indices)", "last over Iroh (index at)", "first over gRPC (index, sent)", "Iroh process gone", "sender drops link_failed / expired / queue_full", "FellBack cause"]
  const perRun = results.flatMap((f) =>
    f.runs.map((o, i) => {
      if (o._tag !== "ok") return [variantLabel(f), String(i + 1), "", `failed: ${firstLine(o.error)}`, ...perRunHeader.slice(4).map(() => "")]
      const x = o.run
      return [
        variantLabel(f),
        String(i + 1),
        ms(x.killDelayMs),
        ms(x.failoverMs),
        ms(x.fellBackMs),
        `${num(x.lost)}${x.lostRanges.length > 0 ? ` (${x.lostRanges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(", ")})` : ""}`,
        `${x.lastIrohIndex} at ${signed(x.lastIrohMs)}`,
        `${x.firstGrpcIndex}, sent ${signed(x.firstGrpcSentMs)}`,
        ms(x.irohExitMs),
        `${num(x.drops["link_failed"] ?? 0)} / ${num(x.drops["expired"] ?? 0)} / ${num(x.drops["queue_full"] ?? 0)}`,
        x.fellBackCause.replace(/\|/g, "/")
      ]
    })
  )
  const failedVariants = r.failover.filter((o) => o._tag === "failed").length
  return [
    ...intro,
    "",
    summary,
    "",
    "Per run (times relative to T):",
    "",
    table(perRunHeader, perRun),
    ...(failedVariants > 0 ? ["", `${failedVariants} variant(s) failed as a whole (see Failures).`] : [])
  ].join("\n")
}

const clusterSection = (r: BenchReport, cores: number): string => {
  const intro = "Three node processes (`src/node/main.ts`, started by `src/node/local-cluster.ts`) on loopback, one fresh " +
    "cluster per transport, Raft log on disk (`sync = \"batch\"`), default `[raft]` timings (election timeout 300-600 ms, " +
    `heartbeat 100 ms). The HTTP clients run in the benchmark process; nodes, clients and benchmark share the ${cores} cores, ` +
    "so these are lower bounds for one machine per node."
  const perTransport = CLUSTER_TRANSPORTS.flatMap(([key, label]) => {
    const o = r.cluster[key]
    if (o._tag !== "ok") return [`#### ${label}`, "", notOkText(o), ""]
    const c = o.value
    return [
      `#### ${label}`,
      "",
      table(
        ["clients", "commits/s", "PUT latency p50", "PUT latency p99", "CPU per put", "commits / errors", "measured"],
        c.loads.map((l) => [
          String(l.clients),
          num(l.commitsPerSec),
          ms(l.p50),
          ms(l.p99),
          `${num(l.cpuUsPerPut)} µs`,
          `${num(l.commits)} / ${num(l.errors)}`,
          `${num(l.durationMs / 1000, 1)} s`
        ])
      ),
      "",
      `Failover (leader SIGKILL → the first write acknowledged by a new leader): ${clusterFailover(c)}; ` +
      `runs: ${c.failoverMs.map(ms).join(", ")}.`,
      ""
    ]
  })
  const e = r.cluster.etcd
  const ours = CLUSTER_TRANSPORTS.flatMap(([key, label]) => {
    const o = r.cluster[key]
    return o._tag === "ok" ? [{ label, loads: o.value }] : []
  })
  const versus = e._tag !== "ok"
    ? ["#### Against etcd", "", notOkText(e)]
    : e.value._tag === "absent"
    ? ["#### Against etcd", "", `Not measured: ${e.value.note}.`]
    : [
      "#### Against etcd",
      "",
      `${e.value.version}, three members on loopback with their defaults (WAL fsynced before a put is acknowledged), ` +
      "driven by the same HTTP client and workload through its v3 JSON gateway, right before our clusters. CPU is that " +
      "of the three member processes (`/proc/<pid>/stat`, 10 ms ticks); idle: a leader, no clients, over 3 s a second after the loads (with `BENCH_CLUSTER_IDLE_ONLY=1`, 10 s after a minute of idling), and over 3 s a second after the members agreed on a leader (their first seconds, while V8 still compiles our nodes' code).",
      "",
      ...versusEtcdTable(e.value, ours)
    ]
  return [intro, "", ...perTransport, ...versus].join("\n").trimEnd()
}

const failures = (r: BenchReport): string => {
  const list: Array<[string, PhaseOutcome<unknown>]> = [
    ["codec", r.codec],
    ["raw ceiling", r.raw],
    ["raw ceiling (again)", r.rawAfter],
    ["transport appends", r.append],
    ["transport heartbeats", r.heartbeat],
    ["transport appends over gRPC", r.appendGrpc],
    ["transport heartbeats over gRPC", r.heartbeatGrpc],
    ["vote latency", r.vote],
    ["vote latency over gRPC", r.voteGrpc],
    ...r.voteSweep.map((o, i): [string, PhaseOutcome<unknown>] => [`vote latency sweep #${i + 1}`, o]),
    ...r.failover.map((o, i): [string, PhaseOutcome<unknown>] => [`failover variant #${i + 1}`, o]),
    ["cluster: etcd", r.cluster.etcd],
    ...CLUSTER_TRANSPORTS.map(([key, label]): [string, PhaseOutcome<unknown>] => [`cluster over ${label}`, r.cluster[key]]),
    ["compression, appends", r.compressedAppends],
    ["compression, snapshot transfer", r.compressedSnapshot],
    ["vote latency, compressed snapshot", r.voteCompressed]
  ]
  const errors: Array<readonly [string, string]> = [
    ...list.flatMap(([name, o]) => (o._tag === "failed" ? [[name, o.error] as const] : [])),
    ...r.failover.flatMap((o) =>
      o._tag !== "ok" ? [] : o.value.runs.flatMap((run, i) =>
        run._tag === "failed" ? [[`failover, ${variantLabel(o.value)}, run ${i + 1}`, run.error] as const] : []
      )
    )
  ]
  if (errors.length === 0) return "None."
  return errors.map(([name, error]) => `**${name}**\n\n\`\`\`\n${error}\n\`\`\``).join("\n\n")
}

export const renderReport = (r: BenchReport): string => {
  const m = r.machine
  const ceiling = ceilingOf(r)
  return [
    "# raft-transport benchmark report",
    "",
    `Command: \`${r.command}\` · started ${r.startedAt.toISOString()} · took ${num(r.totalMs / 1000, 1)} s · commit ${m.git}`,
    "",
    `Machine: Node ${m.node}, ${m.cpus} × ${m.cpuModel}, ${m.platform}, ${num(m.memoryGiB, 1)} GiB RAM, ` +
    `load average at start ${m.loadAverage}; @number0/iroh ${m.iroh}, effect ${m.effect}.`,
    "",
    "MB = 10^6 bytes. Network phases run sender and receiver in separate processes on loopback (relays off). " +
      `Those processes run with the V8 flags our own launcher gives a node on this machine: ${
        peerV8Flags().length === 0 ? "none" : peerV8Flags().map((f) => `\`${f}\``).join(" ")
      } (\`src/node/v8-flags.ts\`; \`BENCH_DEFAULT_GC=1\` runs them with V8's defaults), and the Iroh binding ${
        process.env["BENCH_IROH_WORKER"] === "1" ? "in a worker thread (`BENCH_IROH_WORKER=1`)" : "on the main thread"
      }; the cluster phase's nodes use the launcher's defaults.`,
    "",
    "## Summary",
    "",
    table(["metric", "value", "target", "result"], summaryRows(r).map((x) => [x.metric, x.value, x.target, x.verdict])),
    "",
    ...(() => {
      const notes = backgroundNotes(r)
      return notes.length === 0
        ? ["No significant background load from other processes during the measurements.", ""]
        : [
          "**Background load:** other processes were busy during some measurements. Rates use the median of the " +
          "undisturbed windows when there are any; vote latency has no such fallback, so rerun on a quiet machine if it is flagged:",
          "",
          ...notes.map((n) => `- ${n}`),
          ""
        ]
    })(),
    "## 1. Codec and byte conversions (in-process, tinybench)",
    "",
    codecSection(r.codec),
    "",
    "## 2. Raw binding ceiling",
    "",
    `Ratio denominator: ${num(ceiling, 2)} MB/s, the median of both runs' undisturbed windows.`,
    "",
    rawSection("Before the transport phases", r.raw, m.cpus),
    "",
    rawSection("After the transport phases", r.rawAfter, m.cpus),
    "",
    "## 3. RaftTransport throughput",
    "",
    throughputSection("100 B appends", r.append, ceiling, m.cpus),
    "",
    throughputSection("Heartbeats", r.heartbeat, ceiling, m.cpus),
    "",
    "#### 100 B appends against the adjacent raw runs",
    "",
    appendRatioSection(r.appendRatio),
    "",
    "## 4. Vote latency",
    "",
    voteSection(r.vote, m.cpus),
    "",
    "### Snapshot chunk size vs vote latency (informational)",
    "",
    sweepSection(r),
    "",
    "## 5. gRPC vs Iroh message rate",
    "",
    grpcThroughputSection(r, m.cpus),
    "",
    "## 6. Vote latency over gRPC",
    "",
    grpcVoteSection(r, m.cpus),
    "",
    "## 7. Failover time (dual mode, Iroh peer killed)",
    "",
    failoverSection(r),
    "",
    "## 8. Cluster (3 node processes, Raft KV over HTTP)",
    "",
    clusterSection(r, m.cpus),
    "",
    "## 9. Compression on Iroh",
    "",
    compressionSection(r, m.cpus),
    "",
    "## Failures",
    "",
    failures(r),
    "",
    "## Method",
    "",
    "- Codec: tinybench, hrtime; encode+decode runs 100 times per sample and is reported per message.",
    "- Network phases: `bench/run.ts` forks `bench/peer-process.ts` twice (tsx, IPC). The children exchange endpoint ids " +
    "and addresses through the orchestrator, warm up, then each process is probed at the start and end of a steady window " +
    "(counters, `process.cpuUsage` of all threads, event-loop utilisation of the main thread, `monitorEventLoopDelay` at " +
    "1 ms resolution; lag = delay minus the 1 ms interval).",
    "- Throughput phases (raw and transport): 1 s warm-up after the first bytes arrive, then 4 consecutive 1 s windows; " +
    "the reported rate is the median window (the receiver's count) among the windows without background load (all " +
    "windows if every one was disturbed). Machine CPU is sampled per window: cores busy beyond the two benchmark " +
    `processes are other work on the machine; a window is disturbed above ${BACKGROUND_LIMIT_CORES} cores.`,
    `- Raw ceiling: bare endpoints, one uni stream, one pre-built ${RAW_FRAME_BYTES / 1024} KiB \`Array<number>\` written with \`writeAll\` in a ` +
    `loop, receiver \`read(${RAW_READ_BYTES})\`. Measured before and after the transport phases; the ceiling is the median of ` +
    "both runs' undisturbed windows.",
    "- Transport: `makeRaftTransport` with the shipped defaults (Iroh mode, loopback). The sender reads the class queue " +
    "depth before each burst of up to 256 `send`s and sleeps 1 ms while it is at half capacity or more; the receiver " +
    "counts with `receiveBatch(1000)`. MB/s = messages/s × framed size.",
    "- Votes: sent on a fixed cadence (absolute schedule), RTT from `send` to the response leaving `receiveBatch` in the " +
    "candidate. A warm-up phase of 50 votes opens both connections first.",
    "- gRPC phases: the same roles with both nodes in `mode = \"grpc\"` (`grpc_config.bind_address = \"127.0.0.1:0\"`, " +
    "plaintext, no token), everything else as for Iroh.",
    "- Failover: three processes per run (sender, Iroh half and gRPC half of peer 2), killed with `ChildProcess.kill`; the " +
    "peer processes close their scope on SIGTERM. The sender waits until both of peer 2's links are connected before it " +
    "starts; the run ends 0.5 s after the first gRPC delivery.",
    "- Cluster (`bench/phases/cluster.ts`): per transport, three node processes (every thread `SCHED_BATCH`, the node's " +
    "default; etcd's members as started unless `BENCH_ETCD_SCHEDULING=batch`) elect a leader; 1 and then 64 concurrent " +
    "clients, each count run unmeasured for `BENCH_CLUSTER_WARMUP_MS` (12 s) before it is measured, each loop PUT (100 B " +
    "value, keys reused, `?timeout_ms=5000`) → 200 to the leader's HTTP API; a PUT is answered once the entry is " +
    "committed and applied. commits/s = acknowledged PUTs / measured time; latency = request sent → response, in the client. Failover: the leader is SIGKILLed; from its exit, a " +
    "PUT to a survivor (round robin) every 20 ms, each with `?timeout_ms=2000`, until the first 200; the killed node is " +
    "restarted and rejoins before the next run.",
    ""
  ].join("\n")
}
