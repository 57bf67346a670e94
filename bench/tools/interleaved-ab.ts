/**
 * Two forms of the node compared inside one running cluster, in alternating slices of time.
 *
 * Two clusters started one after the other differ by more than most changes do: on this kind
 * of VM a whole run's CPU per put moves by a third within minutes, and pairs of runs spread
 * 0.6-1.4x (`cluster-ab.ts`). Here the same three processes serve both forms: a hooks module,
 * loaded into every node before its own code (`--import`), switches a node to form B on
 * SIGUSR2 and back to A on SIGWINCH. Each pair of slices measures A and B back to back (which
 * goes first alternates), under the same client count, with the members' CPU, their context
 * switches and the PUT latency of each slice; the drift of the machine is shared by both
 * halves of a pair. CPU is the run time of the members' threads as the scheduler counts it
 * (`processRuntimeMs`), not the 10 ms steps of `/proc/<pid>/stat`, which would blur a half-second
 * slice. Form A is the product as built; the hooks module says what B is.
 *
 *   npx tsx bench/tools/interleaved-ab.ts <iroh|grpc> <hooks module | env:NAME=value,... | flags:--flag ...> [clients=1] [pairs=100] [members=all] [slice_ms=500]
 *
 * `members`: `all`, `followers` or `leader`, the members switched. Prints, per form, the totals
 * of all its slices (CPU per put, context switches per put, the median of the slices' p50s),
 * then B / A per pair (median and quartiles) for CPU per put, PUT p50 and puts/s. With
 * `clients` 0 the slices are idle (a leader, no client), and CPU per second takes CPU per put's
 * place.
 *
 * A form that a running process cannot switch to (a setting read at start, such as the Iroh
 * binding's `TOKIO_WORKER_THREADS`, a V8 flag) is given as `env:NAME=value,...` or
 * `flags:--flag ...` instead of a module: then two clusters run side by side, B's nodes started
 * with those variables or with those flags on their command lines, and the pairs' slices
 * load one cluster or the other while the other idles (each slice counts only its own
 * cluster's CPU; the idle one costs both forms alike).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { LocalCluster } from "../../src/node/local-cluster.ts"
import { processesContextSwitches, processesRuntimeMs } from "../harness/process-cpu.ts"
import { clusterWorkload } from "../phases/cluster.ts"
import { median } from "../harness/stats.ts"

const transport = process.argv[2]
const hooks = process.argv[3]
const clients = Number(process.argv[4] ?? 1)
const pairs = Number(process.argv[5] ?? 100)
const members = process.argv[6] ?? "all"
const sliceMs = Number(process.argv[7] ?? 500)

/** A form switches in the node's signal handler, so a slice starts this long after the signal. */
const SETTLE_MS = 50

interface Totals {
  puts: number
  cpuMs: number
  wallMs: number
  switches: number
  readonly p50s: Array<number>
}

const quartiles = (xs: ReadonlyArray<number>): string => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(s.length * q))]!.toFixed(2)
  return `${median(s).toFixed(3)} (quartiles ${at(0.25)}-${at(0.75)})`
}

/** What B's nodes start with, for a form a running process cannot switch to. */
interface StartupForm {
  readonly env: ReadonlyArray<readonly [string, string]>
  readonly flags: ReadonlyArray<string>
}

/**
 * `env:NAME=value,...` or `flags:--flag ...` (added to B's node command lines) as a startup
 * form; undefined for a hooks module, "bad" when malformed.
 */
const startupFormOf = (form: string): StartupForm | undefined | "bad" => {
  if (form.startsWith("flags:")) {
    const flags = form.slice(6).split(" ").filter((flag) => flag.length > 0)
    return flags.length > 0 && flags.every((flag) => flag.startsWith("-")) ? { env: [], flags } : "bad"
  }
  if (!form.startsWith("env:")) return undefined
  const pairs = form.slice(4).split(",").map((kv) => [kv.slice(0, Math.max(0, kv.indexOf("="))), kv.slice(kv.indexOf("=") + 1)] as const)
  return pairs.every(([name]) => name.length > 0) ? { env: pairs, flags: [] } : "bad"
}

const program = Effect.gen(function*() {
  const startupForm = hooks === undefined ? "bad" : startupFormOf(hooks)
  if ((transport !== "iroh" && transport !== "grpc") || hooks === undefined || startupForm === "bad" || !["all", "followers", "leader"].includes(members)) {
    return yield* Effect.sync(() => {
      process.stderr.write("usage: interleaved-ab.ts <iroh|grpc> <hooks module | env:NAME=value,... | flags:--flag ...> [clients=1] [pairs=100] [all|followers|leader] [slice_ms=500]\n")
      process.exitCode = 2
    })
  }
  const start = (name: string, startup: StartupForm) =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), `raft-interleaved-ab-${transport}-${name}-`))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const cluster = yield* LocalCluster.make({
        dir,
        nodes: 3,
        transport,
        logLevel: "warn",
        // tsx first: the hooks are TypeScript (the node's own `--import tsx` follows, a no-op then).
        nodeFlags: startupForm === undefined ? ["--import", "tsx", "--import", resolve(hooks)] : startup.flags
      })
      // The nodes inherit this process's environment when they are spawned.
      const saved = startup.env.map(([k]) => [k, process.env[k]] as const)
      for (const [k, v] of startup.env) process.env[k] = v
      yield* cluster.startAll().pipe(Effect.ensuring(Effect.sync(() => {
        for (const [k, v] of saved) v === undefined ? delete process.env[k] : (process.env[k] = v)
      })))
      const leader = (yield* cluster.waitForLeader()).id
      const pidOf = (id: number) => cluster.process(id)?.pid ?? -1
      const load = (n: number, ms: number) => clusterWorkload(cluster, () => leader, n, ms)
      const switched = cluster.ids.filter((id) => members === "all" || (members === "leader") === (id === leader)).map(pidOf)
      return { pids: cluster.ids.map(pidOf), load, switched }
    })
  const a = yield* start("a", { env: [], flags: [] })
  const b = startupForm === undefined ? a : yield* start("b", startupForm)
  /** The cluster a slice of `form` loads, after switching it to that form. */
  const toForm = (form: number) =>
    Effect.sync(() => {
      if (startupForm === undefined) a.switched.forEach((pid) => process.kill(pid, form === 1 ? "SIGUSR2" : "SIGWINCH"))
      return form === 1 ? b : a
    })

  yield* a.load(8, 3000)
  if (b !== a) yield* b.load(8, 3000)
  const totals: [Totals, Totals] = [{ puts: 0, cpuMs: 0, wallMs: 0, switches: 0, p50s: [] }, { puts: 0, cpuMs: 0, wallMs: 0, switches: 0, p50s: [] }]
  const ratios = { cpu: [] as Array<number>, p50: [] as Array<number>, rate: [] as Array<number> }
  for (let pair = 0; pair < pairs; pair++) {
    const slice: Array<{ cpuUsPerPut: number; p50: number; rate: number }> = []
    for (const form of pair % 2 === 0 ? [0, 1] : [1, 0]) {
      const { load, pids } = yield* toForm(form)
      yield* Effect.sleep(SETTLE_MS)
      const cpu0 = processesRuntimeMs(pids)
      const switches0 = processesContextSwitches(pids)
      const t0 = performance.now()
      const r = clients > 0 ? yield* load(clients, sliceMs) : undefined
      if (r === undefined) yield* Effect.sleep(sliceMs)
      const wallMs = performance.now() - t0
      const cpuMs = processesRuntimeMs(pids) - cpu0
      const t = totals[form as 0 | 1]
      t.cpuMs += cpuMs
      t.wallMs += wallMs
      t.switches += processesContextSwitches(pids) - switches0
      if (r === undefined) {
        // Idle: CPU per second of the slice in place of CPU per put.
        slice[form] = { cpuUsPerPut: (cpuMs * 1000) / wallMs, p50: Number.NaN, rate: Number.NaN }
        continue
      }
      t.puts += r.puts
      t.p50s.push(r.putLatency.percentile(50))
      slice[form] = { cpuUsPerPut: (cpuMs * 1000) / r.puts, p50: r.putLatency.percentile(50), rate: (r.puts * 1000) / r.durationMs }
    }
    const [inA, inB] = [slice[0]!, slice[1]!]
    ratios.cpu.push(inB.cpuUsPerPut / inA.cpuUsPerPut)
    ratios.p50.push(inB.p50 / inA.p50)
    ratios.rate.push(inB.rate / inA.rate)
  }
  yield* toForm(0)
  const line = (name: string, t: Totals) =>
    clients === 0
      ? `${name}: idle, CPU ${((t.cpuMs * 1000) / t.wallMs).toFixed(1)} ms/s, ${((t.switches * 1000) / t.wallMs).toFixed(0)} context switches/s`
      : `${name}: ${t.puts} PUTs, CPU ${((t.cpuMs * 1000) / t.puts).toFixed(0)} µs/put, ${(t.switches / t.puts).toFixed(1)} context switches/put, p50 ${median(t.p50s).toFixed(3)} ms (median of slices)`
  yield* Effect.sync(() =>
    void process.stdout.write(
      [
        `${transport}, ${clients} client(s), form B (${hooks}) in ${members} member(s), ${pairs} pairs of ${sliceMs} ms slices`,
        line("A", totals[0]),
        line("B", totals[1]),
        clients === 0
          ? `B / A per pair: idle CPU ${quartiles(ratios.cpu)}`
          : `B / A per pair: CPU per put ${quartiles(ratios.cpu)}, PUT p50 ${quartiles(ratios.p50)}, puts/s ${quartiles(ratios.rate)}`
      ].join("\n") + "\n"
    )
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
