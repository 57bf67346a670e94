/**
 * One three-node cluster of this checkout under the cluster phase's measurements
 * (`clusterTransportBench` of `bench/phases/cluster.ts`, no etcd, no failover runs): idle, a
 * warm-up with 8 clients, each client count for `LOAD_MS` (4 s), idle again. Prints one JSON
 * line: per client count puts/s, PUT p50 and the members' CPU per put, and the idle CPU after
 * the loads. `cluster-ab.ts` runs it in two checkouts.
 *
 *   npx tsx bench/tools/cluster-load.ts <iroh|grpc> [clients=1,64]
 */
import { Effect } from "effect"
import { CLUSTER_WARMUP_MS, clusterTransportBench } from "../phases/cluster.ts"

const transport = process.argv[2] === "iroh" ? "iroh" : "grpc"
const concurrency = (process.argv[3] ?? "1,64").split(",").map(Number).filter((n) => n > 0)
const durationMs = Number(process.env["LOAD_MS"] ?? 4000)

const program = Effect.gen(function*() {
  const result = yield* clusterTransportBench(transport, { concurrency, durationMs, warmupMs: CLUSTER_WARMUP_MS, failoverRuns: 0 })
  const loads = result.loads.map((l) => ({ clients: l.clients, putsPerSec: l.commitsPerSec, p50Ms: l.p50, cpuUsPerPut: l.cpuUsPerPut }))
  process.stdout.write(`${JSON.stringify({ transport, loads, idleCpuMsPerSec: result.idleCpuMsPerSec })}\n`)
})

Effect.runPromise(program).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`cluster load failed: ${String(error)}\n`)
    process.exit(1)
  }
)
