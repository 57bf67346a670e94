/**
 * Client workloads against a `LocalCluster`'s HTTP API, for the demo and the cluster benchmark:
 * N concurrent clients doing PUT (optionally followed by a GET that must return the value just
 * written), latency percentiles, and the failover probe (kill → first committed write).
 */
import { Clock, Deferred, Effect, Fiber, Result } from "effect"
import type { HttpReply, LocalCluster, NodeUnreachable } from "./local-cluster.ts"

/**
 * What a workload drives: a key-value cluster behind HTTP (`LocalCluster`, or another store with
 * the same client, as the benchmark's etcd). `put` and `get` answer 200 once the operation is done.
 */
export interface KvCluster {
  readonly put: (id: number, key: string, value: string, timeoutMs?: number) => Effect.Effect<HttpReply, NodeUnreachable>
  readonly get: (id: number, key: string, timeoutMs?: number) => Effect.Effect<HttpReply, NodeUnreachable>
  /** Ids of the members that run. */
  readonly running: () => ReadonlyArray<number>
}

/** The `p`-th percentile (0-100) of samples sorted ascending, nearest rank; NaN when empty. */
export const percentileOfSorted = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** Latency samples in milliseconds. */
export class Latencies {
  private readonly values: Array<number> = []
  private sorted = true

  add(ms: number): void {
    this.values.push(ms)
    this.sorted = false
  }

  get count(): number {
    return this.values.length
  }

  /** The `p`-th percentile (0-100), nearest rank; NaN when empty. */
  percentile(p: number): number {
    if (!this.sorted) {
      this.values.sort((a, b) => a - b)
      this.sorted = true
    }
    return percentileOfSorted(this.values, p)
  }
}

export interface WorkloadOptions {
  readonly cluster: KvCluster
  readonly clients: number
  readonly durationMs: number
  /** The node client `client` talks to on its `attempt`-th try (after a failure it moves on). */
  readonly target: (client: number, attempt: number) => number
  /** After each PUT, GET the key and check the value (a linearizable read). */
  readonly readBack: boolean
  /** Keys per client (keys are reused, so the state, and snapshots, stay small). */
  readonly keysPerClient?: number
  readonly valueBytes?: number
  /** `?timeout_ms=` of each request. */
  readonly requestTimeoutMs?: number
  /** Called about every `progressEveryMs` with the running totals. */
  readonly onProgress?: (progress: WorkloadProgress) => Effect.Effect<void>
  readonly progressEveryMs?: number
  /** Stop once this many PUTs succeeded (else run for `durationMs`). */
  readonly maxPuts?: number
}

export interface WorkloadProgress {
  readonly elapsedMs: number
  readonly ops: number
  readonly opsSinceLast: number
  readonly intervalMs: number
  readonly errors: number
  readonly putLatency: Latencies
}

export interface WorkloadResult {
  readonly durationMs: number
  /** Successful requests (PUTs plus GETs). */
  readonly ops: number
  readonly puts: number
  readonly gets: number
  readonly putLatency: Latencies
  readonly getLatency: Latencies
  /** Failed requests by reason (`no_quorum`, `not_leader`, `ECONNREFUSED`, `timeout`, `mismatch`, ...). */
  readonly errors: Readonly<Record<string, number>>
}

const valueOf = (client: number, n: number, bytes: number): string => {
  const head = `c${client}-${n}-`
  return head + "x".repeat(Math.max(0, bytes - head.length))
}

const reasonOf = (body: unknown, status: number): string =>
  typeof body === "object" && body !== null && "error" in body && typeof body.error === "string" ? body.error : `http_${status}`

/** The body of a 200; anything else fails with why (`ECONNREFUSED`, `timeout`, `no_quorum`, `http_500`, ...). */
const okBody = (reply: Effect.Effect<HttpReply, NodeUnreachable>): Effect.Effect<unknown, string> =>
  Effect.flatMap(Effect.mapError(reply, (e) => e.reason), (r) =>
    r.status === 200 ? Effect.succeed(r.body) : Effect.fail(reasonOf(r.body, r.status)))

/**
 * A `target` for `runWorkload`: `leader()` first; after a failure (an election, say), the running
 * nodes in turn, as followers forward to the leader.
 */
export const leaderThenAny = (cluster: KvCluster, leader: () => number) => (client: number, attempt: number): number => {
  if (attempt === 0) return leader()
  const running = cluster.running()
  return running[(client + attempt) % running.length] ?? leader()
}

export const runWorkload = (options: WorkloadOptions): Effect.Effect<WorkloadResult> =>
  Effect.gen(function*() {
    const { cluster } = options
    const keys = options.keysPerClient ?? 100
    const bytes = options.valueBytes ?? 64
    const putLatency = new Latencies()
    const getLatency = new Latencies()
    const errors: Record<string, number> = {}
    let puts = 0
    let gets = 0
    const fail = (reason: string) => void (errors[reason] = (errors[reason] ?? 0) + 1)
    const totalErrors = () => Object.values(errors).reduce((a, b) => a + b, 0)
    const start = yield* Clock.currentTimeMillis
    const end = start + options.durationMs
    const timeout = options.requestTimeoutMs
    const maxPuts = options.maxPuts ?? Number.POSITIVE_INFINITY

    const client = (c: number) =>
      Effect.gen(function*() {
        let attempt = 0
        let n = 0
        while ((yield* Clock.currentTimeMillis) < end && puts < maxPuts) {
          const node = options.target(c, attempt)
          const key = `client${c}/key${n % keys}`
          const value = valueOf(c, n, bytes)
          const t0 = performance.now()
          const put = yield* Effect.result(okBody(cluster.put(node, key, value, timeout)))
          if (Result.isFailure(put)) {
            fail(put.failure)
            attempt++
            yield* Effect.sleep(20)
            continue
          }
          putLatency.add(performance.now() - t0)
          puts++
          n++
          if (!options.readBack) continue
          const t1 = performance.now()
          const get = yield* Effect.result(okBody(cluster.get(node, key, timeout)))
          if (Result.isFailure(get)) {
            fail(get.failure)
            attempt++
            continue
          }
          const body = get.success
          if (typeof body !== "object" || body === null || !("value" in body) || body.value !== value) {
            fail("mismatch")
            continue
          }
          getLatency.add(performance.now() - t1)
          gets++
        }
      })

    const progress = options.onProgress
    const reporter = progress === undefined ? undefined : yield* Effect.forkChild(
      Effect.gen(function*() {
        let lastOps = 0
        let lastAt = start
        while (true) {
          yield* Effect.sleep(options.progressEveryMs ?? 1000)
          const now = yield* Clock.currentTimeMillis
          const ops = puts + gets
          yield* progress({
            elapsedMs: now - start,
            ops,
            opsSinceLast: ops - lastOps,
            intervalMs: now - lastAt,
            errors: totalErrors(),
            putLatency
          })
          lastOps = ops
          lastAt = now
        }
      }),
      { startImmediately: true }
    )
    yield* Effect.forEach(Array.from({ length: options.clients }, (_, i) => i), client, {
      concurrency: "unbounded",
      discard: true
    })
    if (reporter !== undefined) yield* Fiber.interrupt(reporter)
    const durationMs = (yield* Clock.currentTimeMillis) - start
    return { durationMs, ops: puts + gets, puts, gets, putLatency, getLatency, errors }
  })

export interface FailoverResult {
  /** From the kill (process exited) to the first write acknowledged after it. */
  readonly failoverMs: number
  /** The node that acknowledged it. */
  readonly acknowledgedBy: number
}

/**
 * Kills `victim` with SIGKILL and measures how long until a write is acknowledged: starts a
 * PUT against the survivors (round robin) every `everyMs`, each with `?timeout_ms=attemptMs`
 * (a write a follower forwarded to the dead leader waits out its timeout), and stops at the
 * first 200. Fails after `timeoutMs`.
 */
export const measureFailover = (
  cluster: LocalCluster,
  victim: number,
  options: { readonly everyMs?: number; readonly attemptMs?: number; readonly timeoutMs?: number } = {}
): Effect.Effect<FailoverResult, Error> =>
  Effect.gen(function*() {
    yield* cluster.kill(victim, "SIGKILL")
    const killedAt = performance.now()
    const survivors = cluster.running().filter((id) => id !== victim)
    const first = yield* Deferred.make<FailoverResult>()
    const attempt = (n: number) =>
      Effect.gen(function*() {
        const node = survivors[n % survivors.length]!
        if (yield* Effect.isSuccess(okBody(cluster.put(node, `failover/${victim}/${n}`, String(n), options.attemptMs ?? 2000)))) {
          yield* Deferred.succeed(first, { failoverMs: performance.now() - killedAt, acknowledgedBy: node })
        }
      })
    const prober = Effect.gen(function*() {
      for (let n = 0;; n++) {
        yield* Effect.forkChild(attempt(n), { startImmediately: true })
        yield* Effect.sleep(options.everyMs ?? 50)
      }
    })
    return yield* Deferred.await(first).pipe(
      Effect.raceFirst(Effect.andThen(prober, Effect.never)),
      Effect.timeoutOrElse({
        duration: options.timeoutMs ?? 30_000,
        orElse: () => Effect.fail(new Error("no write acknowledged after the kill"))
      })
    )
  })
