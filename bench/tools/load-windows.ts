/**
 * One cluster under consecutive load windows, each measured on its own: how a cluster's cost
 * per put settles as it runs a load. The cluster phase measures each client count after a
 * warm-up at that count (`CLUSTER_WARMUP_MS` in `bench/phases/cluster.ts`); this shows why.
 *
 *   npx tsx bench/tools/load-windows.ts <etcd|iroh|grpc> [plan=1,1,1,64,64,64] [window_ms=4000]
 *
 * The cluster (etcd's three members, or three of our nodes) starts, idles a second, then runs
 * the cluster phase's workload with each client count of `plan` in turn for `window_ms`, and
 * prints each window's puts/s, PUT p50 and p99 and the members' CPU per acknowledged put.
 *
 * `WINDOWS_RAFT_JSON='{"snapshot_threshold":100000}'` adds keys to our nodes' `[raft]` tables;
 * `BENCH_CPU_PROF=<dir>` profiles our nodes over the whole run (as the cluster phase does).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { KvCluster } from "../../src/node/workload.ts"
import { EtcdCluster, etcdBinary } from "../harness/etcd-cluster.ts"
import { measureLoad, startCluster, writeProfiles } from "../phases/cluster.ts"

const kind = process.argv[2]
const plan = (process.argv[3] ?? "1,1,1,64,64,64").split(",").map(Number).filter((n) => n > 0)
const windowMs = Number(process.argv[4] ?? 4000)

interface Members {
  readonly kv: KvCluster
  readonly leader: number
  readonly pids: ReadonlyArray<number>
  /** Before the members are killed: our nodes write their CPU profiles (`BENCH_CPU_PROF`). */
  readonly stop: Effect.Effect<unknown>
}

const startEtcd = Effect.gen(function*() {
  const binary = etcdBinary()
  if (binary === undefined) return yield* Effect.fail(new Error("no etcd on PATH (apt-get install etcd-server)"))
  const dir = mkdtempSync(join(tmpdir(), "raft-load-windows-etcd-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const etcd = yield* EtcdCluster.make(binary, dir)
  return { kv: etcd, leader: yield* etcd.waitForLeader(), pids: etcd.pids, stop: Effect.void } satisfies Members
})

const startOurs = (transport: "iroh" | "grpc") =>
  Effect.gen(function*() {
    const raftJson = process.env["WINDOWS_RAFT_JSON"]
    const { cluster, leader } = yield* startCluster(transport, raftJson === undefined ? undefined : JSON.parse(raftJson) as Record<string, unknown>)
    const pids = cluster.ids.map((id) => cluster.process(id)?.pid ?? -1)
    return { kv: cluster, leader, pids, stop: writeProfiles(cluster, transport) } satisfies Members
  })

const program = Effect.gen(function*() {
  if (kind !== "etcd" && kind !== "iroh" && kind !== "grpc") {
    return yield* Effect.fail(new Error("usage: load-windows.ts <etcd|iroh|grpc> [plan] [window_ms]"))
  }
  const { kv, leader, pids, stop } = yield* (kind === "etcd" ? startEtcd : startOurs(kind))
  yield* Effect.sleep(1000)
  const lines: Array<string> = []
  for (const clients of plan) {
    const load = yield* measureLoad(kv, pids, () => leader, clients, windowMs)
    lines.push(
      `${clients} client(s): ${Math.round(load.commitsPerSec)} puts/s, p50 ${load.p50.toFixed(2)} ms, p99 ${load.p99.toFixed(1)} ms, ${Math.round(load.cpuUsPerPut)} µs CPU/put`
    )
  }
  yield* Effect.sync(() => void process.stdout.write(`${kind}, windows of ${windowMs} ms\n${lines.join("\n")}\n`))
  yield* stop
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
