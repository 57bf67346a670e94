/**
 * The cost of one metric update on the transport's hot path, two ways of labelling a series:
 * `Metric.withAttributes` over the shared metric (the labels merged into the context on every
 * update), and `series` from `src/metrics/metrics.ts` (a metric per series, its labels built
 * in). Four series of one counter (two peers, two classes) are updated in turn, as a leader's
 * writers update theirs, 200,000 times; the rounds alternate the two ways.
 *
 *   npx tsx bench/tools/metric-series.ts [rounds=5]
 */
import { Effect, Metric } from "effect"
import * as M from "../../src/metrics/metrics.ts"

const rounds = Number(process.argv[2] ?? 5)
const UPDATES = 200_000
const labels = [
  { peer: "2", class: "append", transport: "iroh" },
  { peer: "3", class: "append", transport: "iroh" },
  { peer: "2", class: "heartbeat", transport: "iroh" },
  { peer: "3", class: "heartbeat", transport: "iroh" }
]

const timeUpdates = (metrics: ReadonlyArray<Metric.Metric<number, unknown>>) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    for (let i = 0; i < UPDATES; i++) yield* Metric.update(metrics[i % metrics.length]!, 1)
    return ((performance.now() - t0) * 1e6) / UPDATES
  })

const main = Effect.gen(function*() {
  const wrapped = labels.map((l) => Metric.withAttributes(M.messagesSent, l))
  const series = labels.map((l) => M.series(M.messagesSent, l))
  console.log(`ns per update, ${labels.length} series of one counter updated in turn`)
  for (let round = 1; round <= rounds; round++) {
    const a = yield* timeUpdates(wrapped)
    const b = yield* timeUpdates(series)
    console.log(`round ${round}: withAttributes ${a.toFixed(0)}, series ${b.toFixed(0)} (${(b / a).toFixed(2)}x)`)
  }
  // Both ways count into the same series.
  const counted = yield* Metric.value(Metric.withAttributes(M.messagesSent, labels[0]!))
  if (Number(counted.count) !== (rounds * 2 * UPDATES) / labels.length) throw new Error(`miscounted: ${counted.count}`)
})

Effect.runPromise(main).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
