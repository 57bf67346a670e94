/**
 * What one call into the Iroh binding costs when the process calls it often and when it wakes
 * from idle to call it: two bare endpoints in this process (relays off, loopback), one
 * connection and one uni stream; `writeAll` of 30 bytes (a heartbeat's size) and
 * `connection.stats()` (what the dark watch reads), each back to back and at 10 calls a
 * second, for 3 s per rate, then `writeAll` at 10 a second again with the binding's threads
 * made `SCHED_BATCH` as the transport makes them (`src/iroh/thread-policy.ts`). Prints the
 * synchronous part of each call (p10, p50, p90) and the process's CPU per call (both endpoints
 * and the binding's threads, timers included).
 *
 *   npx tsx bench/tools/binding-call-cost.ts
 *
 * An idle cluster's heartbeats are ten calls a second or fewer per link, so this is the price
 * of each (bench/README.md, "Cluster").
 */
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { cpuUsage } from "node:process"
import { applyBindingThreadPolicy } from "../../src/iroh/thread-policy.ts"
import { addressOf, bindRaw, connectTo, RAW_READ_BYTES, readFirstUni } from "../phases/raw-ceiling.ts"

/** Calls a second; 0: back to back. */
const RATES = [0, 10]
const SECONDS_PER_RATE = 3
const MESSAGE = Array.from({ length: 30 }, (_, i) => i)

const quantile = (sorted: ReadonlyArray<number>, q: number): number => sorted[Math.floor(q * (sorted.length - 1))] ?? Number.NaN

/** Calls `call` at `perSecond` for the configured time; the line to print. */
const measure = (name: string, perSecond: number, call: () => Promise<unknown>) =>
  Effect.promise(async () => {
    const sync: Array<number> = []
    const cpu0 = cpuUsage()
    const t0 = performance.now()
    while (performance.now() - t0 < SECONDS_PER_RATE * 1000) {
      const before = performance.now()
      const pending = call()
      sync.push((performance.now() - before) * 1000)
      await pending
      if (perSecond > 0) await new Promise((resolve) => setTimeout(resolve, 1000 / perSecond))
    }
    const cpu = cpuUsage(cpu0)
    sync.sort((a, b) => a - b)
    const us = (q: number) => quantile(sync, q).toFixed(0)
    return `${name} ${perSecond > 0 ? `at ${perSecond}/s` : "back to back"}: ${sync.length} calls, synchronous µs p10 ${us(0.1)} p50 ${us(0.5)} p90 ${us(0.9)}, ` +
      `process CPU ${((cpu.user + cpu.system) / sync.length).toFixed(0)} µs a call`
  })

const program = Effect.gen(function*() {
  const receiver = yield* bindRaw
  yield* readFirstUni(receiver, async (stream) => {
    while ((await stream.read(RAW_READ_BYTES)).length > 0) {
      // Drains what the sender writes.
    }
  })
  const sender = yield* bindRaw
  const connection = yield* connectTo(sender, addressOf(receiver))
  const stream = yield* Effect.promise(() => connection.openUni())
  for (const rate of RATES) {
    // The first pass warms the code; the second is the figure.
    for (const pass of [0, 1]) {
      const write = yield* measure("writeAll(30 B)", rate, () => stream.writeAll(MESSAGE))
      const stats = yield* measure("stats()", rate, () => Promise.resolve(connection.stats()))
      if (pass === 1) yield* Effect.sync(() => void process.stdout.write(`${write}\n${stats}\n`))
    }
  }
  // The raw endpoints leave the binding's threads as the process made them; the transport makes
  // them SCHED_BATCH (`src/iroh/thread-policy.ts`): the same call from idle, then.
  yield* applyBindingThreadPolicy("batch")
  for (const pass of [0, 1]) {
    const write = yield* measure("writeAll(30 B), binding threads SCHED_BATCH,", 10, () => stream.writeAll(MESSAGE))
    if (pass === 1) yield* Effect.sync(() => void process.stdout.write(`${write}\n`))
  }
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
