/**
 * Our clusters against etcd in rounds: each round starts etcd's three members, then a
 * three-node cluster per transport, measures each with the same client counts as the cluster
 * phase (no failover runs), and takes the ratios ours / etcd within the round. The median of
 * the rounds' ratios is the figure: on a machine whose speed drifts by a third within minutes,
 * one run's ratio at 64 clients moved by 2x between runs, and the median of several rounds
 * moves less.
 *
 *   npx tsx bench/tools/cluster-rounds.ts [rounds=5] [clients=64]
 *
 * `clients` is a comma-separated list (e.g. `1,64`). Progress on stderr, Markdown on stdout.
 */
import { Effect } from "effect"
import { CLUSTER_WARMUP_MS, clusterTransportBench, etcdClusterBench, versusEtcd } from "../phases/cluster.ts"
import { median } from "../harness/stats.ts"

const rounds = Number(process.argv[2] ?? 5)
const concurrency = (process.argv[3] ?? "64").split(",").map(Number).filter((n) => n > 0)
const transports = ["iroh", "grpc"] as const
const loads = { concurrency, durationMs: 3_000, warmupMs: CLUSTER_WARMUP_MS, failoverRuns: 0 }

const program = Effect.gen(function*() {
  /** Per transport, per metric: the ratio of each round. */
  const ratios = new Map<string, Map<string, Array<number>>>(transports.map((t) => [t, new Map()]))
  for (let round = 0; round < rounds; round++) {
    const etcd = yield* etcdClusterBench(loads)
    if (etcd._tag !== "measured") return yield* Effect.fail(new Error(etcd.note))
    for (const transport of transports) {
      const ours = yield* clusterTransportBench(transport, loads)
      for (const line of versusEtcd(etcd, ours)) {
        const byMetric = ratios.get(transport)!
        byMetric.set(line.metric, [...(byMetric.get(line.metric) ?? []), line.ratio])
      }
    }
  }
  const metrics = [...ratios.get(transports[0])!.keys()]
  const cell = (xs: ReadonlyArray<number>) => `**${median(xs).toFixed(2)}x** (${xs.map((x) => x.toFixed(2)).join(", ")})`
  const lines = [
    `Ours / etcd, median of ${rounds} rounds (each round's ratio in brackets):`,
    "",
    `| | ${transports.join(" | ")} |`,
    `|---|${transports.map(() => "---").join("|")}|`,
    ...metrics.map((m) => `| ${m} | ${transports.map((t) => cell(ratios.get(t)!.get(m) ?? [])).join(" | ")} |`)
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
})

Effect.runPromise(program).catch((error: unknown) => {
  process.stderr.write(`cluster rounds failed: ${String(error)}\n`)
  process.exitCode = 1
})
