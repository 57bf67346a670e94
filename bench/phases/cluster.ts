/**
 * Cluster benchmark: three node processes (`src/node/main.ts`) on loopback, driven through
 * their HTTP API, once over Iroh and once over gRPC:
 *
 * - commit throughput and latency p50/p99 of PUTs sent to the leader, with 1 and with 64
 *   concurrent HTTP clients (each client waits for its PUT to be committed and applied);
 * - failover time: SIGKILL the leader → the first write acknowledged by the survivors
 *   (several runs, the killed node restarted in between).
 *
 * Run alone: `npx tsx bench/phases/cluster.ts` (Markdown on stdout, progress on stderr). From code:
 * `runClusterBench()` (Promise) or `clusterBench` (Effect; interrupting it kills the nodes).
 *
 * The nodes, the HTTP clients and the benchmark itself share the machine's cores, so the
 * numbers are a lower bound for one machine per node. Nodes keep their Raft log on disk
 * (`sync = "batch"`: one fsync per appended batch), default `[raft]` timings.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { type ClusterTransport, LocalCluster } from "../../src/node/local-cluster.ts"
import { leaderThenAny, measureFailover, runWorkload, type WorkloadResult } from "../../src/node/workload.ts"
import { median } from "../harness/stats.ts"

export interface ClusterBenchOptions {
  readonly transports?: ReadonlyArray<ClusterTransport>
  /** Length of each throughput measurement (default 5 s). */
  readonly durationMs?: number
  readonly warmupMs?: number
  readonly concurrency?: ReadonlyArray<number>
  readonly failoverRuns?: number
}

export interface ClusterBenchRow {
  readonly metric: string
  readonly value: string
}

/** One throughput measurement: `clients` concurrent HTTP clients for `durationMs`. */
export interface ClusterLoad {
  readonly clients: number
  readonly durationMs: number
  /** PUTs acknowledged (committed and applied) in the measurement. */
  readonly commits: number
  readonly commitsPerSec: number
  /** PUT latency percentiles, ms. */
  readonly p50: number
  readonly p99: number
  readonly errors: number
}

export interface ClusterResult {
  readonly transport: ClusterTransport
  readonly loads: ReadonlyArray<ClusterLoad>
  /** Leader SIGKILL → the first write acknowledged by the survivors, one per run, ms. */
  readonly failoverMs: ReadonlyArray<number>
}

const progress = (line: string) => Effect.sync(() => void process.stderr.write(`[cluster bench] ${line}\n`))

const fmtMs = (x: number) => (Number.isNaN(x) ? "-" : x < 10 ? x.toFixed(2) : x.toFixed(1))
const fmtRate = (x: number) => Math.round(x).toLocaleString("en-US")

const loadOf = (clients: number, r: WorkloadResult): ClusterLoad => ({
  clients,
  durationMs: r.durationMs,
  commits: r.puts,
  commitsPerSec: (r.puts * 1000) / r.durationMs,
  p50: r.putLatency.percentile(50),
  p99: r.putLatency.percentile(99),
  errors: Object.values(r.errors).reduce((a, b) => a + b, 0)
})

const withDefaults = (options: ClusterBenchOptions): Required<ClusterBenchOptions> => ({
  transports: options.transports ?? ["iroh", "grpc"],
  durationMs: options.durationMs ?? 5000,
  warmupMs: options.warmupMs ?? 1000,
  concurrency: options.concurrency ?? [1, 64],
  failoverRuns: options.failoverRuns ?? 3
})

/** Three nodes up with an agreed leader; their directory is removed when the scope closes. */
const startCluster = (transport: ClusterTransport) =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), `raft-cluster-bench-${transport}-`))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const cluster = yield* LocalCluster.make({ dir, nodes: 3, transport, logLevel: "warn" })
    yield* cluster.startAll()
    return { cluster, leader: (yield* cluster.waitForLeader()).id }
  })

/**
 * One transport's measurements (`options.transports` is ignored); the nodes are killed when it
 * ends or is interrupted.
 */
export const clusterTransportBench = (transport: ClusterTransport, options: ClusterBenchOptions = {}) =>
  Effect.gen(function*() {
    const { concurrency, durationMs, failoverRuns, warmupMs } = withDefaults(options)
    const { cluster, leader: first } = yield* startCluster(transport)
    let leader = first
    yield* progress(`${transport}: 3 nodes up, leader node ${leader}`)

    const load = (clients: number, ms: number) =>
      runWorkload({
        cluster,
        clients,
        durationMs: ms,
        readBack: false,
        keysPerClient: 1000,
        valueBytes: 100,
        requestTimeoutMs: 5000,
        target: leaderThenAny(cluster, () => leader)
      })
    yield* load(8, warmupMs)
    const loads: Array<ClusterLoad> = []
    for (const clients of concurrency) {
      const result = loadOf(clients, yield* load(clients, durationMs))
      loads.push(result)
      yield* progress(
        `${transport}: ${clients} client(s): ${fmtRate(result.commitsPerSec)} commits/s, p50 ${fmtMs(result.p50)} ms, p99 ${fmtMs(result.p99)} ms`
      )
    }

    const failoverMs: Array<number> = []
    for (let run = 0; run < failoverRuns; run++) {
      const victim = leader
      const result = yield* measureFailover(cluster, victim, { everyMs: 20, attemptMs: 2000 })
      failoverMs.push(result.failoverMs)
      leader = (yield* cluster.waitForLeader({ among: cluster.running() })).id
      yield* progress(`${transport}: failover ${run + 1}: ${fmtMs(result.failoverMs)} ms (node ${victim} → node ${leader})`)
      if (run + 1 === failoverRuns) break // the scope kills the nodes: no need to restart the victim
      yield* cluster.start(victim)
      yield* cluster.waitForLeader()
    }
    return { transport, loads, failoverMs } satisfies ClusterResult
  }).pipe(Effect.scoped)

const render = (results: ReadonlyArray<ClusterResult>, options: Required<ClusterBenchOptions>) => {
  const rows: Array<ClusterBenchRow> = []
  const lines: Array<string> = [
    "## Cluster: Raft key-value nodes over HTTP",
    "",
    `3 node processes on loopback (${availableParallelism()} cores shared with the clients); PUTs of 100 B values to the ` +
    `leader's HTTP API, each acknowledged once committed and applied; Raft log on disk (sync = "batch"). ` +
    `${options.durationMs / 1000} s per measurement.`,
    "",
    "| transport | clients | commits/s | p50 ms | p99 ms | errors |",
    "|---|---:|---:|---:|---:|---:|"
  ]
  for (const r of results) {
    for (const l of r.loads) {
      lines.push(`| ${r.transport} | ${l.clients} | ${fmtRate(l.commitsPerSec)} | ${fmtMs(l.p50)} | ${fmtMs(l.p99)} | ${l.errors} |`)
      rows.push({ metric: `cluster ${r.transport}: commits/s, ${l.clients} client(s)`, value: fmtRate(l.commitsPerSec) })
      rows.push({ metric: `cluster ${r.transport}: PUT latency p50 / p99, ${l.clients} client(s)`, value: `${fmtMs(l.p50)} / ${fmtMs(l.p99)} ms` })
    }
  }
  lines.push(
    "",
    "Failover: SIGKILL the leader, then a PUT to the survivors every 20 ms; time until the first one is acknowledged " +
      "(election timeout 300-600 ms, heartbeat 50 ms).",
    "",
    "| transport | runs | median ms | min ms | max ms |",
    "|---|---:|---:|---:|---:|"
  )
  for (const r of results) {
    const m = median(r.failoverMs)
    lines.push(
      `| ${r.transport} | ${r.failoverMs.length} | ${fmtMs(m)} | ${fmtMs(Math.min(...r.failoverMs))} | ${fmtMs(Math.max(...r.failoverMs))} |`
    )
    rows.push({ metric: `cluster ${r.transport}: failover (kill leader → first write), median`, value: `${fmtMs(m)} ms` })
  }
  return { markdown: `${lines.join("\n")}\n`, rows }
}

/** The benchmark as an Effect: every node process is killed if it is interrupted. */
export const clusterBench = (options: ClusterBenchOptions = {}) =>
  Effect.gen(function*() {
    const full = withDefaults(options)
    const results: Array<ClusterResult> = []
    for (const transport of full.transports) results.push(yield* clusterTransportBench(transport, full))
    return render(results, full)
  })

export const runClusterBench = (
  options: ClusterBenchOptions = {}
): Promise<{ markdown: string; rows: Array<{ metric: string; value: string }> }> => Effect.runPromise(clusterBench(options))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(
    clusterBench().pipe(
      Effect.flatMap(({ markdown }) => Effect.sync(() => void process.stdout.write(markdown))),
      Effect.catch((error) =>
        Effect.sync(() => {
          process.stderr.write(`cluster bench failed: ${error.message}\n`)
          process.exitCode = 1
        })
      )
    )
  )
}
