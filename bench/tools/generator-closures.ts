/**
 * Why hot paths use `Effect.fnUntraced` (a generator function made once) rather than an
 * `Effect.gen` closure per call: a loop takes batches of 500 small objects and handles each
 * batch with one of these shapes, for 3 s.
 *
 *   npx node --import tsx --trace-gc-nvp bench/tools/generator-closures.ts <shape>
 *
 * With `--trace-gc-nvp` each scavenge's `new_space_survived` shows what the shape keeps alive.
 * Shapes: `gen-closure` (`(batch) => Effect.gen(function*() { ... batch ... })`),
 * `plain-generator` (a JS generator closure per batch, no Effect), `fn-untraced`
 * (`Effect.fnUntraced(function*(batch) { ... })`), `sync` (`Effect.sync`).
 */
import { Effect } from "effect"
import { performance } from "node:perf_hooks"

type Item = { readonly index: number; readonly entries: ReadonlyArray<{ readonly data: Uint8Array }> }

const shape = process.argv[2] ?? "gen-closure"
let handled = 0
const nextBatch = Effect.promise(() =>
  new Promise<Array<Item>>((resolve) =>
    setImmediate(() => {
      const out: Array<Item> = []
      for (let i = 0; i < 500; i++) out.push({ index: i, entries: [{ data: new Uint8Array(8) }] })
      resolve(out)
    })
  )
)
const genClosure = (batch: Array<Item>) =>
  Effect.gen(function*() {
    handled += batch.length
  })
const fnUntraced = Effect.fnUntraced(function*(batch: Array<Item>) {
  handled += batch.length
})
const sync = (batch: Array<Item>) => Effect.sync(() => (handled += batch.length))
const plainGenerator = (batch: Array<Item>) =>
  Effect.sync(() => {
    const it = (function*() {
      handled += batch.length
    })()
    it.next()
  })

const handlers: Record<string, (batch: Array<Item>) => Effect.Effect<unknown>> = {
  "gen-closure": genClosure,
  "plain-generator": plainGenerator,
  "fn-untraced": fnUntraced,
  sync
}
const handle = handlers[shape]
if (handle === undefined) {
  console.error(`unknown shape ${shape}; one of ${Object.keys(handlers).join(", ")}`)
  process.exit(2)
}
const start = performance.now()
Effect.runFork(
  Effect.gen(function*() {
    while (performance.now() - start < 3000) yield* handle(yield* nextBatch)
    console.log(`${shape}: ${handled.toLocaleString("en-US")} items in 3 s`)
  })
)
