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
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import { type ClusterTransport, LocalCluster } from "../../src/node/local-cluster.ts"
import { type KvCluster, leaderThenAny, measureFailover, runWorkload, type WorkloadResult } from "../../src/node/workload.ts"
import { EtcdCluster, etcdBinary, type EtcdError, etcdVersion } from "../harness/etcd-cluster.ts"
import { processesContextSwitches, processesCpuMs } from "../harness/process-cpu.ts"
import { median } from "../harness/stats.ts"

export interface ClusterBenchOptions {
  readonly transports?: ReadonlyArray<ClusterTransport>
  /** Length of each throughput measurement (default 5 s). */
  readonly durationMs?: number
  readonly warmupMs?: number
  /** How long the idle cluster's CPU is measured (default 3 s; the kernel counts in 10 ms ticks). */
  readonly idleMs?: number
  /**
   * With no client counts, how long the cluster idles before its idle CPU is measured (default
   * 60 s): V8 still compiles code of our nodes that an idle cluster runs a few times a second.
   */
  readonly idleSettleMs?: number
  readonly concurrency?: ReadonlyArray<number>
  readonly failoverRuns?: number
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
  /** CPU time of the cluster's member processes per acknowledged PUT, µs. */
  readonly cpuUsPerPut: number
  /** Context switches of the member processes' threads per acknowledged PUT (how often a put wakes a thread). */
  readonly switchesPerPut: number
}

/** What is measured of any cluster, ours or etcd: idle, each client count, idle again. */
export interface ClusterLoads {
  /**
   * CPU time of the member processes while the cluster is idle (a leader, no clients), ms per
   * second, once it has run: after the loads, or after `idleSettleMs` when there are none.
   */
  readonly idleCpuMsPerSec: number
  /** The same, a second after the members agreed on a leader (the processes' first seconds). */
  readonly startIdleCpuMsPerSec: number
  readonly loads: ReadonlyArray<ClusterLoad>
}

/** etcd measured the same way, right before our clusters (skipped when no `etcd` is on PATH). */
export type EtcdResult =
  | ({ readonly _tag: "measured"; readonly version: string } & ClusterLoads)
  | { readonly _tag: "absent"; readonly note: string }

export interface ClusterResult extends ClusterLoads {
  readonly transport: ClusterTransport
  /** Leader SIGKILL → the first write acknowledged by the survivors, one per run, ms. */
  readonly failoverMs: ReadonlyArray<number>
}

const progress = (line: string) => Effect.sync(() => void process.stderr.write(`[cluster bench] ${line}\n`))

const fmtMs = (x: number) => (Number.isNaN(x) ? "-" : x < 10 ? x.toFixed(2) : x.toFixed(1))
const fmtRate = (x: number) => Math.round(x).toLocaleString("en-US")

const loadOf = (clients: number, r: WorkloadResult, cpuMs: number, switches: number): ClusterLoad => ({
  clients,
  cpuUsPerPut: r.puts === 0 ? Number.NaN : (cpuMs * 1000) / r.puts,
  switchesPerPut: r.puts === 0 ? Number.NaN : switches / r.puts,
  durationMs: r.durationMs,
  commits: r.puts,
  commitsPerSec: (r.puts * 1000) / r.durationMs,
  p50: r.putLatency.percentile(50),
  p99: r.putLatency.percentile(99),
  errors: Object.values(r.errors).reduce((a, b) => a + b, 0)
})

/**
 * The cluster phase's workload, the same for etcd and ours and for the tools that measure a
 * cluster the same way: `clients` HTTP clients, each PUTting 100 B values over its own 1,000
 * keys until acknowledged, on the leader (`leader()`) first, for `durationMs`.
 */
export const clusterWorkload = (kv: KvCluster, leader: () => number, clients: number, durationMs: number) =>
  runWorkload({
    cluster: kv,
    clients,
    durationMs,
    readBack: false,
    keysPerClient: 1000,
    valueBytes: 100,
    requestTimeoutMs: 5000,
    target: leaderThenAny(kv, leader)
  })

/**
 * How long every cluster, etcd's and ours, runs each client count before that count is
 * measured: `BENCH_CLUSTER_WARMUP_MS`, 12 s by default. Both sides are measured at a load they
 * have settled into, as a cluster that has been running is. Our nodes are JavaScript, and V8
 * compiles the functions a load makes hot for its first ten seconds or so (a leader's TurboFan
 * jobs took 30-200 ms a second over the first ten seconds at 64 clients); etcd, compiled ahead
 * of time, settles within a few seconds (its heap, its connections). From a fresh cluster, in
 * consecutive 4 s windows at 64 clients (`npx tsx bench/tools/load-windows.ts <etcd|iroh|grpc>
 * 64,64,64,64,64,64,64,64`), our gRPC cluster's CPU per put went from 708-730 µs to 305-393
 * from the fifth window on, etcd's from 500-526 to 388-461 from the third (bench/README.md).
 */
export const CLUSTER_WARMUP_MS = Number(process.env["BENCH_CLUSTER_WARMUP_MS"] ?? 12_000)

const withDefaults = (options: ClusterBenchOptions): Required<ClusterBenchOptions> => ({
  transports: options.transports ?? ["iroh", "grpc"],
  durationMs: options.durationMs ?? 5000,
  warmupMs: options.warmupMs ?? CLUSTER_WARMUP_MS,
  idleMs: options.idleMs ?? 3000,
  idleSettleMs: options.idleSettleMs ?? 60_000,
  concurrency: options.concurrency ?? [1, 64],
  failoverRuns: options.failoverRuns ?? 3
})

/** `clients` clients for `durationMs`, with the members' (`pids`) CPU and context switches over it. */
export const measureLoad = (kv: KvCluster, pids: ReadonlyArray<number>, leader: () => number, clients: number, durationMs: number) =>
  Effect.gen(function*() {
    const cpu0 = processesCpuMs(pids)
    const switches0 = processesContextSwitches(pids)
    const workload = yield* clusterWorkload(kv, leader, clients, durationMs)
    return loadOf(clients, workload, processesCpuMs(pids) - cpu0, processesContextSwitches(pids) - switches0)
  })

/**
 * The measurements every cluster gets, ours and etcd alike: CPU of the members over `idleMs`
 * with no clients (after a second to settle), then each client count for `warmupMs` unmeasured
 * and for `durationMs` with the members' CPU over it, then idle again, a second after the loads
 * (after `idleSettleMs` when there were none): the figure compared, since a Node process's
 * first seconds are mostly V8 compiling its code.
 */
const measureLoads = (
  kv: KvCluster,
  pids: ReadonlyArray<number>,
  leader: () => number,
  options: Pick<Required<ClusterBenchOptions>, "concurrency" | "durationMs" | "warmupMs" | "idleMs" | "idleSettleMs">,
  label: string
) =>
  Effect.gen(function*() {
    const idleCpu = Effect.gen(function*() {
      const idle0 = processesCpuMs(pids)
      const idleT0 = performance.now()
      yield* Effect.sleep(options.idleMs)
      return ((processesCpuMs(pids) - idle0) * 1000) / (performance.now() - idleT0)
    })
    yield* Effect.sleep(1000)
    const startIdleCpuMsPerSec = yield* idleCpu
    yield* progress(`${label}: idle cluster CPU in its first seconds ${fmtMs(startIdleCpuMsPerSec)} ms/s`)
    const loads: Array<ClusterLoad> = []
    for (const clients of options.concurrency) {
      if (options.warmupMs > 0) yield* clusterWorkload(kv, leader, clients, options.warmupMs)
      const result = yield* measureLoad(kv, pids, leader, clients, options.durationMs)
      loads.push(result)
      yield* progress(
        `${label}: ${clients} client(s): ${fmtRate(result.commitsPerSec)} commits/s, p50 ${fmtMs(result.p50)} ms, ` +
          `p99 ${fmtMs(result.p99)} ms, CPU ${Math.round(result.cpuUsPerPut)} µs/put, ` +
          `${result.switchesPerPut.toFixed(1)} context switches/put`
      )
    }
    yield* Effect.sleep(loads.length > 0 ? 1000 : options.idleSettleMs)
    const idleCpuMsPerSec = yield* idleCpu
    yield* progress(`${label}: idle cluster CPU ${loads.length > 0 ? "after the loads" : "once settled"} ${fmtMs(idleCpuMsPerSec)} ms/s`)
    return { idleCpuMsPerSec, startIdleCpuMsPerSec, loads } satisfies ClusterLoads
  })

/** etcd (the `etcd` on PATH) under the same measurements, or why it was not run. */
export const etcdClusterBench = (options: ClusterBenchOptions = {}): Effect.Effect<EtcdResult, EtcdError> =>
  Effect.gen(function*() {
    const binary = etcdBinary()
    if (binary === undefined) {
      yield* progress("no etcd on PATH: etcd not measured (apt-get install etcd-server)")
      return { _tag: "absent", note: "no `etcd` binary on PATH (Debian: `apt-get install etcd-server`)" } as const
    }
    const version = yield* etcdVersion(binary)
    const dir = mkdtempSync(join(tmpdir(), "raft-cluster-bench-etcd-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const etcd = yield* EtcdCluster.make(binary, dir)
    const leader = yield* etcd.waitForLeader()
    yield* progress(`etcd (${version}): 3 members up, leader member ${leader}`)
    const measured = yield* measureLoads(etcd, etcd.pids, () => leader, withDefaults(options), "etcd")
    return { _tag: "measured", version, ...measured } as const
  }).pipe(Effect.scoped)

/**
 * `BENCH_CPU_PROF=<dir>`: the nodes run with `--cpu-prof` into `<dir>/cluster-<transport>`, and
 * are stopped with SIGTERM (which writes the profiles) after the loads instead of being killed
 * in failover runs.
 */
const cpuProfDir = process.env["BENCH_CPU_PROF"]

/**
 * Three nodes up with an agreed leader, `raft` keys added to their `[raft]` tables; their
 * directory is removed when the scope closes.
 */
export const startCluster = (transport: ClusterTransport, raft?: Record<string, unknown>) =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), `raft-cluster-bench-${transport}-`))
    yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
    const nodeFlags = cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(cpuProfDir, `cluster-${transport}`)}`]
    const cluster = yield* LocalCluster.make({ dir, nodes: 3, transport, logLevel: "warn", nodeFlags, ...(raft === undefined ? {} : { raft }) })
    yield* cluster.startAll()
    return { cluster, leader: (yield* cluster.waitForLeader()).id }
  })

/**
 * With `BENCH_CPU_PROF`, stops the nodes with SIGTERM, which writes their profiles, and gives
 * them a moment to (the scope's close kills them with SIGKILL). Returns whether it did.
 */
export const writeProfiles = (cluster: LocalCluster, transport: ClusterTransport) =>
  Effect.gen(function*() {
    if (cpuProfDir === undefined) return false
    yield* Effect.forEach(cluster.running(), (id) => cluster.kill(id, "SIGTERM"), { discard: true })
    yield* Effect.sleep(PROFILE_WRITE_MS)
    yield* progress(`${transport}: CPU profiles in ${join(cpuProfDir, `cluster-${transport}`)}`)
    return true
  })

/** Long enough for a node to write a profile of a few minutes on a busy machine. */
const PROFILE_WRITE_MS = 3000

/**
 * One transport's measurements (`options.transports` is ignored); the nodes are killed when it
 * ends or is interrupted.
 */
export const clusterTransportBench = (transport: ClusterTransport, options: ClusterBenchOptions = {}) =>
  Effect.gen(function*() {
    const { concurrency, durationMs, failoverRuns, idleMs, idleSettleMs, warmupMs } = withDefaults(options)
    const { cluster, leader: first } = yield* startCluster(transport)
    let leader = first
    yield* progress(`${transport}: 3 nodes up, leader node ${leader}`)

    const pids = cluster.ids.map((id) => cluster.process(id)?.pid ?? -1)
    const measured = yield* measureLoads(cluster, pids, () => leader, { concurrency, durationMs, warmupMs, idleMs, idleSettleMs }, transport)
    const failoverMs: Array<number> = []
    const profiled = yield* writeProfiles(cluster, transport)
    if (profiled) yield* progress(`${transport}: no failover runs`)
    for (let run = 0; run < (profiled ? 0 : failoverRuns); run++) {
      const victim = leader
      const result = yield* measureFailover(cluster, victim, { everyMs: 20, attemptMs: 2000 })
      failoverMs.push(result.failoverMs)
      leader = (yield* cluster.waitForLeader({ among: cluster.running() })).id
      yield* progress(`${transport}: failover ${run + 1}: ${fmtMs(result.failoverMs)} ms (node ${victim} → node ${leader})`)
      if (run + 1 === failoverRuns) break // the scope kills the nodes: no need to restart the victim
      yield* cluster.start(victim)
      yield* cluster.waitForLeader()
    }
    return { transport, ...measured, failoverMs } satisfies ClusterResult
  }).pipe(Effect.scoped)

/** One line of the comparison with etcd: both values and ours / etcd. */
export interface VersusEtcd {
  readonly metric: string
  readonly etcd: string
  readonly ours: string
  /** ours / etcd. */
  readonly ratio: number
  /** Whether a ratio above 1 is better (throughput) or worse (latency, CPU). */
  readonly higherIsBetter: boolean
}

/** Our cluster against etcd, per client count measured by both, and idle. */
export const versusEtcd = (etcd: ClusterLoads, ours: ClusterLoads): Array<VersusEtcd> => {
  const lines: Array<VersusEtcd> = []
  for (const o of ours.loads) {
    const e = etcd.loads.find((l) => l.clients === o.clients)
    if (e === undefined) continue
    const c = `${o.clients} client${o.clients === 1 ? "" : "s"}`
    lines.push(
      { metric: `puts/s, ${c}`, etcd: fmtRate(e.commitsPerSec), ours: fmtRate(o.commitsPerSec), ratio: o.commitsPerSec / e.commitsPerSec, higherIsBetter: true },
      { metric: `PUT p50 ms, ${c}`, etcd: fmtMs(e.p50), ours: fmtMs(o.p50), ratio: o.p50 / e.p50, higherIsBetter: false },
      { metric: `PUT p99 ms, ${c}`, etcd: fmtMs(e.p99), ours: fmtMs(o.p99), ratio: o.p99 / e.p99, higherIsBetter: false },
      {
        metric: `CPU of the 3 members per acknowledged put, µs, ${c}`,
        etcd: fmtRate(e.cpuUsPerPut),
        ours: fmtRate(o.cpuUsPerPut),
        ratio: o.cpuUsPerPut / e.cpuUsPerPut,
        higherIsBetter: false
      }
    )
  }
  lines.push({
    metric: "CPU of the idle 3-member cluster, ms/s",
    etcd: fmtMs(etcd.idleCpuMsPerSec),
    ours: fmtMs(ours.idleCpuMsPerSec),
    ratio: ours.idleCpuMsPerSec / etcd.idleCpuMsPerSec,
    higherIsBetter: false
  }, {
    metric: "CPU of the idle 3-member cluster in its first seconds, ms/s",
    etcd: fmtMs(etcd.startIdleCpuMsPerSec),
    ours: fmtMs(ours.startIdleCpuMsPerSec),
    ratio: ours.startIdleCpuMsPerSec / etcd.startIdleCpuMsPerSec,
    higherIsBetter: false
  })
  return lines
}

/** A Markdown table of `versusEtcd` for each of our transports (columns: etcd, then each transport and its ratio). */
export const versusEtcdTable = (etcd: ClusterLoads, ours: ReadonlyArray<{ readonly label: string; readonly loads: ClusterLoads }>): Array<string> => {
  if (ours.length === 0) return []
  const per = ours.map((o) => versusEtcd(etcd, o.loads))
  const header = ["", "etcd", ...ours.flatMap((o) => [o.label, `${o.label} / etcd`])]
  const lines = [`| ${header.join(" | ")} |`, `|---|${header.slice(1).map(() => "---:").join("|")}|`]
  per[0]!.forEach((row, i) => {
    const cells = [row.metric, row.etcd, ...per.flatMap((p) => [p[i]?.ours ?? "-", p[i] === undefined ? "-" : `${p[i]!.ratio.toFixed(2)}x`])]
    lines.push(`| ${cells.join(" | ")} |`)
  })
  return lines
}

const render = (etcd: EtcdResult, results: ReadonlyArray<ClusterResult>, options: Required<ClusterBenchOptions>) => {
  const lines: Array<string> = [
    "## Cluster: Raft key-value nodes over HTTP",
    "",
    `3 node processes on loopback (${availableParallelism()} cores shared with the clients); PUTs of 100 B values to the ` +
    `leader's HTTP API, each acknowledged once committed and applied; Raft log on disk (sync = "batch"). ` +
    `${options.durationMs / 1000} s per measurement.`,
    "",
    "| cluster | clients | commits/s | p50 ms | p99 ms | CPU µs/put | errors |",
    "|---|---:|---:|---:|---:|---:|---:|"
  ]
  const row = (name: string, l: ClusterLoad) =>
    `| ${name} | ${l.clients} | ${fmtRate(l.commitsPerSec)} | ${fmtMs(l.p50)} | ${fmtMs(l.p99)} | ${fmtRate(l.cpuUsPerPut)} | ${l.errors} |`
  if (etcd._tag === "measured") for (const l of etcd.loads) lines.push(row(`etcd ${etcd.version.replace(/^etcd Version: /, "")}`, l))
  for (const r of results) for (const l of r.loads) lines.push(row(r.transport, l))
  lines.push("")
  if (etcd._tag === "measured") {
    lines.push("Against etcd, measured in the same run:", "", ...versusEtcdTable(etcd, results.map((r) => ({ label: r.transport, loads: r }))))
  } else {
    lines.push(`etcd not measured: ${etcd.note}.`)
  }
  lines.push(
    "",
    "Failover: SIGKILL the leader, then a PUT to the survivors every 20 ms; time until the first one is acknowledged " +
      "(election timeout 300-600 ms, heartbeat 100 ms).",
    "",
    "| transport | runs | median ms | min ms | max ms |",
    "|---|---:|---:|---:|---:|"
  )
  for (const r of results) {
    if (r.failoverMs.length === 0) {
      lines.push(`| ${r.transport} | 0 | - | - | - |`)
      continue
    }
    const m = median(r.failoverMs)
    lines.push(
      `| ${r.transport} | ${r.failoverMs.length} | ${fmtMs(m)} | ${fmtMs(Math.min(...r.failoverMs))} | ${fmtMs(Math.max(...r.failoverMs))} |`
    )
  }
  return `${lines.join("\n")}\n`
}

/** The benchmark as an Effect (etcd first, then each transport): every process is killed if it is interrupted. */
export const clusterBench = (options: ClusterBenchOptions = {}) =>
  Effect.gen(function*() {
    const full = withDefaults(options)
    const etcd = yield* etcdClusterBench(full)
    const results: Array<ClusterResult> = []
    for (const transport of full.transports) results.push(yield* clusterTransportBench(transport, full))
    return render(etcd, results, full)
  })

export const runClusterBench = (options: ClusterBenchOptions = {}): Promise<string> => Effect.runPromise(clusterBench(options))

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(
    clusterBench().pipe(
      Effect.flatMap((markdown) => Effect.sync(() => void process.stdout.write(markdown))),
      Effect.catch((error) =>
        Effect.sync(() => {
          process.stderr.write(`cluster bench failed: ${error.message}\n`)
          process.exitCode = 1
        })
      )
    )
  )
}
