/**
 * CPU of an idle 3-node cluster (a leader, no clients), the cluster phase's idle figure alone:
 * the nodes start, agree on a leader, settle for a second, then their CPU (`/proc/<pid>/stat`)
 * is read over `idle_ms`. Prints one line per node and the total in ms/s.
 *
 *   npx node --import tsx bench/tools/idle-cluster.ts <iroh|grpc|dual|etcd> [idle_ms=10000] [cpu_prof_dir]
 *
 * (`npx node`: the pinned Node, which the nodes inherit.) `etcd` measures etcd's three members
 * (Debian's `etcd-server`, their defaults) the same way, for the same seconds' comparison.
 *
 * `IDLE_TRANSPORT_JSON='{"strategy":{"dark_after_ms":0}}'` replaces keys of every node's
 * `[transport]` table, to price one mechanism against the shipped settings.
 *
 * `IDLE_RAFT_JSON='{"heartbeat_interval_ms":1000,"election_timeout_min_ms":3000,"election_timeout_max_ms":6000}'`
 * adds keys to every node's `[raft]` table, to price the heartbeats.
 *
 * `IDLE_NODE_FLAGS='--jitless'` adds Node or V8 flags to our nodes' command lines.
 *
 * `IDLE_AT=<unix ms>` starts the measurement at that time rather than a second after the leader
 * is agreed: two trees' clusters started together are then measured over the same seconds,
 * which pairs them against the machine's drift (`IDLE_AT=$(( $(date +%s%3N) + 20000 ))`).
 *
 * With `cpu_prof_dir`, the nodes run with `--cpu-prof` and are stopped with SIGTERM after the
 * measurement, which writes their profiles (summarise with `bench/tools/profile-summary.ts`).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Clock, Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { type ClusterOptions, type ClusterTransport, LocalCluster } from "../../src/node/local-cluster.ts"
import { EtcdCluster, etcdBinary } from "../harness/etcd-cluster.ts"
import { processCpuMs } from "../harness/process-cpu.ts"

const transports: ReadonlyArray<ClusterTransport | "etcd"> = ["iroh", "grpc", "dual", "etcd"]
const transport = transports.find((t) => t === process.argv[2])
const idleMs = Number(process.argv[3] ?? 10_000)
const profDir = process.argv[4]
const extraNodeFlags = (process.env["IDLE_NODE_FLAGS"] ?? "").split(" ").filter((flag) => flag !== "")
const startAt = process.env["IDLE_AT"] === undefined ? undefined : Number(process.env["IDLE_AT"])

/** The JSON object in environment variable `name`, if set: keys for a TOML table. */
const tableFromEnv = (name: string) =>
  Effect.try({
    try: () => {
      const json = process.env[name]
      return json === undefined ? undefined : JSON.parse(json) as Record<string, unknown>
    },
    catch: (cause) => new Error(`${name}: ${String(cause)}`)
  })

interface Members {
  readonly ids: ReadonlyArray<number>
  readonly pids: ReadonlyArray<number>
  readonly leader: number
  /** SIGTERM every member (so profiles are written). */
  readonly stop: Effect.Effect<void>
}

const startOurs = (dir: string, transport: ClusterTransport, options: Omit<ClusterOptions, "dir" | "nodes" | "transport">) =>
  Effect.gen(function*() {
    const cluster = yield* LocalCluster.make({ dir, nodes: 3, transport, logLevel: "warn", ...options })
    yield* cluster.startAll()
    const leader = (yield* cluster.waitForLeader()).id
    return {
      ids: cluster.ids,
      pids: cluster.ids.map((id) => cluster.process(id)?.pid ?? -1),
      leader,
      stop: Effect.forEach(cluster.running(), (id) => Effect.ignore(cluster.kill(id, "SIGTERM")), { discard: true })
    } satisfies Members
  })

/** etcd's three members with their defaults, as the cluster phase starts them. */
const startEtcd = (dir: string) =>
  Effect.gen(function*() {
    const binary = etcdBinary()
    if (binary === undefined) return yield* Effect.fail(new Error("no etcd on PATH (apt-get install etcd-server)"))
    const cluster = yield* EtcdCluster.make(binary, dir)
    const leader = yield* cluster.waitForLeader()
    return { ids: cluster.running(), pids: cluster.pids, leader, stop: Effect.void } satisfies Members
  })

const program = Effect.gen(function*() {
  if (transport === undefined || !(idleMs > 0)) {
    return yield* Effect.sync(() => {
      process.stderr.write("usage: idle-cluster.ts <iroh|grpc|dual|etcd> [idle_ms] [cpu_prof_dir]\n")
      process.exitCode = 2
    })
  }
  const dir = mkdtempSync(join(tmpdir(), `raft-idle-${transport}-`))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const nodeFlags = [...extraNodeFlags, ...(profDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profDir}`])]
  const transportOverrides = yield* tableFromEnv("IDLE_TRANSPORT_JSON")
  const raftOverrides = yield* tableFromEnv("IDLE_RAFT_JSON")
  const members = transport === "etcd" ? yield* startEtcd(dir) : yield* startOurs(dir, transport, {
    nodeFlags,
    ...(raftOverrides === undefined ? {} : { raft: raftOverrides }),
    ...(transportOverrides === undefined ? {} : { transportOverrides })
  })
  const now = yield* Clock.currentTimeMillis
  yield* Effect.sleep(startAt === undefined ? 1000 : Math.max(0, startAt - now))
  const { pids } = members
  const cpu0 = pids.map(processCpuMs)
  const t0 = performance.now()
  yield* Effect.sleep(idleMs)
  const cpu1 = pids.map(processCpuMs)
  const seconds = (performance.now() - t0) / 1000
  const perNode = cpu1.map((c, i) => (c - cpu0[i]!) / seconds)
  const total = perNode.reduce((a, b) => a + b, 0)
  const lines = members.ids.map((id, i) => `node ${id}${id === members.leader ? " (leader)" : ""}: ${perNode[i]!.toFixed(1)} ms/s`)
  yield* Effect.sync(() => void process.stdout.write(`${transport} idle over ${seconds.toFixed(1)} s: ${lines.join(", ")}; total ${total.toFixed(1)} ms/s\n`))
  if (profDir !== undefined) yield* members.stop
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
