/**
 * `npm run bench`: runs every benchmark phase in order, each under a timeout, and writes the
 * Markdown report to stdout and to `bench/results.md`. Progress goes to stderr. A failed
 * phase is reported as failed and the run continues; peer processes are always killed.
 *
 * Environment:
 * - `BENCH_VERBOSE=1` forwards the peer processes' output to stderr.
 * - `BENCH_NODE_FLAGS="--trace-gc"` adds Node flags to the peer processes (Node refuses some of
 *   them in NODE_OPTIONS); with BENCH_VERBOSE=1 their output shows, e.g. GC pauses.
 * - `BENCH_IROH_WORKER=1|0` sets `iroh_config.worker_thread` for the two-process phases' nodes.
 * - `BENCH_DEFAULT_GC=1` starts those peers without the launcher's `--single-threaded-gc`.
 * - `BENCH_CPU_PROF=<dir>` writes a V8 CPU profile of each peer's probe windows there.
 *   The cluster phase's nodes run with `--cpu-prof` into `<dir>/cluster-<transport>` and are
 *   stopped with SIGTERM after the loads (no failover runs).
 * - `BENCH_HEAP_PROF=<dir>` writes a sampling allocation profile of the same windows, garbage
 *   included; with `BENCH_HEAP_PROF_MINOR=0` only what outlived a scavenge.
 * - `BENCH_CLUSTER_IDLE_ONLY=1`: the cluster phase measures only the idle clusters (etcd and ours,
 *   10 s each instead of 3 s, in their first seconds and again after a minute of idling), no
 *   loads and no failover runs.
 * - `BENCH_CLUSTER_CLIENTS=1,64` (the default) and `BENCH_CLUSTER_FAILOVERS=3`: the cluster
 *   phase's client counts and leader kills per transport, e.g. `BENCH_CLUSTER_CLIENTS=1
 *   BENCH_CLUSTER_FAILOVERS=0` for a quick look at one client.
 * - `BENCH_ONLY=<phase>,<phase>` runs only those phases (the others render as "not run"), and
 *   writes the report to stdout only, so `bench/results.md` always holds a full run. Phases:
 *   codec, raw, append, heartbeat, append-grpc, heartbeat-grpc, append-ratio, vote, vote-grpc,
 *   vote-sweep, failover, cluster (etcd when on PATH, then both transports), compression, compression-snapshot,
 *   vote-compressed. E.g.
 *   `BENCH_ONLY=cluster npm run bench`.
 */
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import type { ClusterTransport } from "../src/node/local-cluster.ts"
import { CLUSTER_WARMUP_MS, clusterTransportBench, etcdClusterBench } from "./phases/cluster.ts"
import { runAppendRatio } from "./phases/append-ratio.ts"
import { runCodecBench } from "./phases/codec.ts"
import { COMPRESSION_ON, runCompressedAppends, runSnapshotTransfers } from "./phases/compression.ts"
import { type KillSignal, runFailover } from "./phases/failover.ts"
import { machineInfo } from "./harness/machine.ts"
import { benchOnly, runPhase } from "./harness/phase.ts"
import { runRawCeiling } from "./phases/raw-ceiling.ts"
import { type BenchReport, renderReport } from "./report.ts"
import { runTransportThroughput } from "./phases/transport-throughput.ts"
import { COMPRESSION_OFF } from "./phases/compression.ts"
import { DEFAULT_VOTES, runVoteLatency } from "./phases/vote-latency.ts"
import type { FlowOptions } from "./harness/windows.ts"

const RESULTS = fileURLToPath(new URL("./results.md", import.meta.url))
const WARMUP_MS = 1_000
/** Each throughput measurement: a warm-up, then consecutive windows; the median window is reported. */
const FLOW: FlowOptions = { warmupMs: WARMUP_MS, windows: 4, windowMs: 1_000 }
/** Append runs in the paired ratio measurement (each between two raw runs). */
const APPEND_RATIO_PAIRS = 5
/**
 * Every vote run: RequestVotes per phase, their cadence, and the snapshot kept in flight under
 * load. 1,000 votes so that p99 is not just the third-worst sample: with 300, the idle p99 (the
 * ratio's denominator) moved by a third between runs of the same build.
 */
const VOTES = DEFAULT_VOTES
const SWEEP_CHUNK_BYTES = [4 * 1024, 64 * 1024]
/**
 * Dual-mode failover: how the Iroh half of the peer dies, and the sender's dark-path settings:
 * shipped (pings every 250 ms, the dark watch at 200 ms), and probes alone (dark_after_ms 0)
 * with 1 s pings for comparison.
 */
const FAILOVER_VARIANTS: ReadonlyArray<{
  readonly signal: KillSignal
  readonly probeIntervalMs: number
  readonly probeTimeoutMs: number
  readonly darkAfterMs: number
}> = [
  { signal: "SIGTERM", probeIntervalMs: 250, probeTimeoutMs: 1000, darkAfterMs: 200 },
  { signal: "SIGKILL", probeIntervalMs: 250, probeTimeoutMs: 1000, darkAfterMs: 200 },
  { signal: "SIGKILL", probeIntervalMs: 1000, probeTimeoutMs: 1000, darkAfterMs: 0 }
]
const FAILOVER_RUNS = 3
/** Cluster phases: each client count's workload, and leader kills per transport. */
const CLUSTER_LOAD_MS = 3_000
const CLUSTER_IDLE_ONLY = process.env["BENCH_CLUSTER_IDLE_ONLY"] === "1"
const CLUSTER_CLIENTS = (process.env["BENCH_CLUSTER_CLIENTS"] ?? "1,64").split(",").map(Number).filter((n) => n > 0)
const CLUSTER_FAILOVER_RUNS = CLUSTER_IDLE_ONLY ? 0 : Number(process.env["BENCH_CLUSTER_FAILOVERS"] ?? 3)
/** Compression: rounds of on/off append runs per payload kind (and compressed ceiling runs for JSON); pairs of snapshot processes per setting, transfers per pair. */
const COMPRESSION_ROUNDS = 3
const SNAPSHOT_PAIRS = 2
const TRANSFERS_PER_PAIR = 2

const program = Effect.gen(function*() {
  const startedAt = new Date()
  const t0 = performance.now()
  const machine = machineInfo()
  const keyDir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "raft-transport-bench-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

  const codec = yield* runPhase("codec", "codec micro-benchmarks", 90_000, Effect.tryPromise(() => runCodecBench({ timeMs: 600 })))
  const rawCeiling = (name: string) => runPhase("raw", name, 45_000, runRawCeiling(FLOW))
  const raw = yield* rawCeiling("raw Iroh ceiling")
  /** One message-rate phase: phase names `append`, `heartbeat`, `append-grpc`, `heartbeat-grpc`. */
  const throughput = (kind: "append" | "heartbeat", mode: "iroh" | "grpc") => {
    const name = mode === "iroh" ? kind : `${kind}-grpc`
    const what = kind === "append" ? "100 B appends" : "heartbeats"
    return runPhase(
      name,
      `transport throughput${mode === "grpc" ? " over gRPC" : ""}: ${what}`,
      60_000,
      // Uncompressed: these figures are the transport's own cost against the binding's; the
      // compression phase measures what compression adds.
      runTransportThroughput({ kind, mode, keyDir: join(keyDir, name), overrides: COMPRESSION_OFF, ...FLOW })
    )
  }
  const append = yield* throughput("append", "iroh")
  const heartbeat = yield* throughput("heartbeat", "iroh")
  const appendGrpc = yield* throughput("append", "grpc")
  const heartbeatGrpc = yield* throughput("heartbeat", "grpc")
  const rawAfter = yield* rawCeiling("raw Iroh ceiling, again after the transport phases")
  // The target's verdict: appends against the raw runs adjacent to each of them (append-ratio.ts).
  const appendRatio = yield* runPhase(
    "append-ratio",
    `append ratio: ${APPEND_RATIO_PAIRS} append runs, each between two raw runs`,
    240_000,
    runAppendRatio({ ...FLOW, pairs: APPEND_RATIO_PAIRS, keyDir: join(keyDir, "append-ratio") })
  )
  const voteLatency = (mode: "iroh" | "grpc") =>
    runPhase(
      mode === "iroh" ? "vote" : "vote-grpc",
      `vote latency${mode === "grpc" ? " over gRPC" : ""}, idle and under a ${VOTES.snapshotBytes / 1e6} MB snapshot`,
      90_000,
      runVoteLatency({ keyDir: join(keyDir, `vote-${mode}`), mode, ...VOTES })
    )
  const vote = yield* voteLatency("iroh")
  const voteGrpc = yield* voteLatency("grpc")

  // Informational: how the snapshot chunk size moves the same numbers (small chunks on
  // the main thread are one answer to a snapshot's copies, a worker thread the other).
  const voteSweep = yield* Effect.forEach(SWEEP_CHUNK_BYTES, (chunk) =>
    runPhase(
      "vote-sweep",
      `vote latency with ${chunk / 1024} KiB snapshot chunks`,
      90_000,
      runVoteLatency({ keyDir: join(keyDir, `vote-${chunk}`), ...VOTES, snapshotChunkBytes: chunk })
    ))

  const failover = yield* Effect.forEach(FAILOVER_VARIANTS, ({ signal, probeIntervalMs, probeTimeoutMs, darkAfterMs }) =>
    runPhase(
      "failover",
      `failover: ${signal} of the Iroh peer, probes every ${probeIntervalMs} ms (timeout ${probeTimeoutMs} ms), dark_after_ms = ${darkAfterMs}, ${FAILOVER_RUNS} runs`,
      180_000,
      runFailover({
        keyDir: join(keyDir, `failover-${signal}-${probeIntervalMs}-${darkAfterMs}`),
        signal,
        probeIntervalMs,
        probeTimeoutMs,
        darkAfterMs,
        runs: FAILOVER_RUNS,
        warmupMs: WARMUP_MS,
        afterMs: 500,
        timeoutMs: 30_000
      })
    ))

  // Last: three node processes per transport, the whole Raft KV path (HTTP → Raft → disk → apply).
  const clusterLoads = CLUSTER_IDLE_ONLY
    ? { durationMs: CLUSTER_LOAD_MS, warmupMs: CLUSTER_WARMUP_MS, concurrency: [], idleMs: 10_000 }
    : { durationMs: CLUSTER_LOAD_MS, warmupMs: CLUSTER_WARMUP_MS, concurrency: CLUSTER_CLIENTS }
  const clusterPhase = (transport: ClusterTransport) =>
    runPhase(
      "cluster",
      `cluster: 3 node processes over ${transport}, ${CLUSTER_CLIENTS.join(" and ")} clients, ${CLUSTER_FAILOVER_RUNS} leader kills`,
      120_000,
      clusterTransportBench(transport, { ...clusterLoads, failoverRuns: CLUSTER_FAILOVER_RUNS })
    )
  // etcd right before ours, same client and workload: the ratios are the cluster figures.
  const etcd = yield* runPhase(
    "cluster",
    `cluster: 3 etcd members (the yardstick), ${CLUSTER_CLIENTS.join(" and ")} clients`,
    120_000,
    etcdClusterBench(clusterLoads)
  )
  const cluster = { etcd, iroh: yield* clusterPhase("iroh"), grpc: yield* clusterPhase("grpc") }

  const compressedAppends = yield* runPhase(
    "compression",
    `Iroh compression: appends of three payload kinds on/off and the JSON compressed ceiling between raw ceiling runs, ${COMPRESSION_ROUNDS} rounds`,
    900_000,
    runCompressedAppends({ ...FLOW, keyDir: join(keyDir, "compression"), rounds: COMPRESSION_ROUNDS })
  )
  const compressedSnapshot = yield* runPhase(
    "compression-snapshot",
    `Iroh compression: ${VOTES.snapshotBytes / 1e6} MB KV snapshot transfer on/off`,
    300_000,
    runSnapshotTransfers({
      keyDir: join(keyDir, "compression-snapshot"),
      snapshotBytes: VOTES.snapshotBytes,
      snapshotPairs: SNAPSHOT_PAIRS,
      transfersPerPair: TRANSFERS_PER_PAIR
    })
  )
  const voteCompressed = yield* runPhase(
    "vote-compressed",
    `vote latency, idle and under a ${VOTES.snapshotBytes / 1e6} MB KV JSON snapshot, compression on`,
    90_000,
    runVoteLatency({
      keyDir: join(keyDir, "vote-compressed"),
      ...VOTES,
      snapshotData: "kv-json",
      compression: COMPRESSION_ON["compression"] as Record<string, unknown>
    })
  )

  const report: BenchReport = {
    command: "npm run bench",
    startedAt,
    totalMs: performance.now() - t0,
    machine,
    codec,
    raw,
    rawAfter,
    appendRatio,
    append,
    heartbeat,
    appendGrpc,
    heartbeatGrpc,
    vote,
    voteGrpc,
    voteSweep,
    failover,
    cluster,
    compressedAppends,
    compressedSnapshot,
    voteCompressed
  }
  const markdown = renderReport(report)
  yield* Effect.sync(() => {
    process.stdout.write(markdown)
    if (benchOnly.length > 0) {
      process.stderr.write(`[bench] BENCH_ONLY=${benchOnly.join(",")}: ${RESULTS} left as it was\n`)
      return
    }
    writeFileSync(RESULTS, markdown)
    process.stderr.write(`[bench] report written to ${RESULTS}\n`)
  })
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`[bench] failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(1)
  }
)
