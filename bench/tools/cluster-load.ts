/**
 * One three-node cluster of this checkout under the cluster phase's workload (100 B values,
 * 1,000 keys per client, PUT until acknowledged), no etcd: a warm-up with 8 clients, each client
 * count for `LOAD_MS` (4 s), then 3 s idle. Prints one JSON line: per client count puts/s, PUT
 * p50 and the members' CPU per put, and the idle CPU. `cluster-ab.ts` runs it in two checkouts.
 *
 *   npx tsx bench/tools/cluster-load.ts <iroh|grpc> [clients=1,64]
 */
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { LocalCluster } from "../../src/node/local-cluster.ts"
import { leaderThenAny, runWorkload } from "../../src/node/workload.ts"
import { processesCpuMs } from "../harness/process-cpu.ts"

const transport = process.argv[2] === "iroh" ? "iroh" : "grpc"
const clientCounts = (process.argv[3] ?? "1,64").split(",").map(Number).filter((n) => n > 0)
const loadMs = Number(process.env["LOAD_MS"] ?? 4000)

const program = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "cluster-load-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const cluster = yield* LocalCluster.make({ dir, nodes: 3, transport, logLevel: "warn", nodeFlags: [] })
  yield* cluster.startAll()
  const leader = (yield* cluster.waitForLeader()).id
  const pids = cluster.ids.map((id) => cluster.process(id)?.pid ?? -1)
  const load = (clients: number, durationMs: number) =>
    runWorkload({
      cluster,
      clients,
      durationMs,
      readBack: false,
      keysPerClient: 1000,
      valueBytes: 100,
      requestTimeoutMs: 5000,
      target: leaderThenAny(cluster, () => leader)
    })
  yield* load(8, 2000)
  const loads: Array<{ clients: number; putsPerSec: number; p50Ms: number; cpuUsPerPut: number }> = []
  for (const clients of clientCounts) {
    const cpu0 = processesCpuMs(pids)
    const r = yield* load(clients, loadMs)
    const cpuMs = processesCpuMs(pids) - cpu0
    loads.push({ clients, putsPerSec: (r.puts * 1000) / r.durationMs, p50Ms: r.putLatency.percentile(50), cpuUsPerPut: (cpuMs * 1000) / r.puts })
  }
  const idle0 = processesCpuMs(pids)
  const t0 = performance.now()
  yield* Effect.sleep(3000)
  const idleCpuMsPerSec = ((processesCpuMs(pids) - idle0) * 1000) / (performance.now() - t0)
  process.stdout.write(`${JSON.stringify({ transport, loads, idleCpuMsPerSec })}\n`)
}).pipe(Effect.scoped)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`cluster load failed: ${String(error)}\n`)
    process.exit(1)
  }
)
