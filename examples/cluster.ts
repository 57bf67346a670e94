/**
 * Demo: a Raft key-value cluster of node processes on loopback, talking over raft-transport.
 *
 *   npm run demo -- [--transport iroh|grpc|dual] [--nodes N] [--duration S] [--clients C] [--keep]
 *
 * 1. generates a key file and a node TOML per node in a temp dir (free ports picked up front);
 * 2. starts N node processes (`src/node/main.ts run --config …`) and waits for a leader;
 * 3. runs a write+read workload through the HTTP API (C clients: PUT, then a linearizable GET
 *    of the same key), with a progress line per second;
 * 4. SIGKILLs the leader and reports the time until a new leader commits a write;
 * 5. writes more while the old leader is down (past the snapshot threshold), restarts it and
 *    shows it catching up by snapshot;
 * 6. prints a summary: leader changes, failover time, ops/s, latency, messages per class,
 *    routes and fallbacks per node.
 *
 * Processes and files are cleaned up on exit and on Ctrl-C (`--keep` keeps the directory,
 * with each node's log).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Clock, Data, Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type ClusterTransport, getMetrics, LocalCluster, type NodeStatus, type Sample } from "../src/node/local-cluster.ts"
import { leaderThenAny, measureFailover, runWorkload, type WorkloadResult } from "../src/node/workload.ts"

class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

interface Options {
  readonly transport: ClusterTransport
  readonly nodes: number
  readonly durationS: number
  readonly clients: number
  readonly keep: boolean
}

const USAGE = "usage: npm run demo -- [--transport iroh|grpc|dual] [--nodes N] [--duration S] [--clients C] [--keep]"

/** The integer options: the field each sets and its bounds. */
const INT_OPTIONS = new Map<string, { readonly field: "nodes" | "durationS" | "clients"; readonly min: number; readonly max: number }>([
  ["--nodes", { field: "nodes", min: 3, max: 9 }], // a failover needs a majority to survive the leader
  ["--duration", { field: "durationS", min: 1, max: 3600 }],
  ["--clients", { field: "clients", min: 1, max: 256 }]
])

const parseArgs = (args: ReadonlyArray<string>): Options | UsageError => {
  let transport: ClusterTransport = "iroh"
  const ints = { nodes: 3, durationS: 10, clients: 8 }
  let keep = false
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const [name, inline] = arg.includes("=") ? arg.split("=", 2) as [string, string] : [arg, undefined]
    const value = () => inline ?? args[++i]
    const bounds = INT_OPTIONS.get(name)
    if (bounds !== undefined) {
      const raw = value()
      const n = Number(raw)
      if (!(Number.isSafeInteger(n) && n >= bounds.min && n <= bounds.max)) {
        return new UsageError({ message: `${name} expects an integer in ${bounds.min}..${bounds.max}, got ${raw}` })
      }
      ints[bounds.field] = n
    } else if (name === "--transport") {
      const t = value()
      if (t !== "iroh" && t !== "grpc" && t !== "dual") return new UsageError({ message: `--transport expects iroh, grpc or dual, got ${t}` })
      transport = t
    } else if (name === "--keep") {
      keep = true
    } else {
      return new UsageError({ message: `unknown option ${arg}` })
    }
  }
  return { transport, ...ints, keep }
}

const say = (line = "") => Effect.sync(() => console.log(line))
const ms = (x: number) => (Number.isNaN(x) ? "-" : x < 10 ? `${x.toFixed(2)} ms` : `${x.toFixed(1)} ms`)
const secs = (x: number) => `${(x / 1000).toFixed(2)} s`
const pad = (s: string | number, n: number) => String(s).padEnd(n)
const lpad = (s: string | number, n: number) => String(s).padStart(n)
const int = (n: number) => Math.round(n).toLocaleString("en-US")

/** Snapshot threshold of the demo nodes: small, so a node that was down catches up by snapshot. */
const SNAPSHOT_THRESHOLD = 300
/** In dual mode, how long after restarting the old leader the demo waits for every link to be up. */
const LINKS_UP_WAIT_MS = 15_000

/** Per-class message counts and per-node fallbacks from one node's `/metrics`. */
const tally = (samples: ReadonlyArray<Sample>) => {
  const byClass: Record<string, { messages: number; bytes: number }> = {}
  let fallbacks = 0
  for (const s of samples) {
    if (s.name === "raft_transport_messages_sent_total" || s.name === "raft_transport_bytes_sent_total") {
      const cls = s.labels["class"] ?? "?"
      const entry = (byClass[cls] ??= { messages: 0, bytes: 0 })
      if (s.name === "raft_transport_messages_sent_total") entry.messages += s.value
      else entry.bytes += s.value
    } else if (s.name === "raft_transport_fallbacks_total") {
      fallbacks += s.value
    }
  }
  return { byClass, fallbacks }
}

const routesOf = (status: NodeStatus): string =>
  status.peers.map((p) => {
    const routes = [...new Set(Object.values(p.routes).filter((r) => r !== null))]
    const notUp = p.links.filter((l) => l.state !== "connected").map((l) => `${l.transport} ${l.state}`)
    return `→${p.id} ${routes.join("+") || "-"}${notUp.length > 0 ? ` (${notUp.join(", ")})` : ""}`
  }).join(", ")

const demo = (options: Options) =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "raft-demo-"))
    yield* Effect.addFinalizer(() =>
      options.keep
        ? say(`\nkept ${dir} (configs, keys, data, node logs)`)
        : Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    yield* say(`raft-transport cluster demo: ${options.nodes} node processes over ${options.transport}, ` +
      `${options.clients} clients, ${options.durationS} s workload`)
    yield* say(`working directory ${dir}`)

    // 1. Keys and configs, then the processes.
    const cluster = yield* LocalCluster.make({
      dir,
      nodes: options.nodes,
      transport: options.transport,
      raft: {
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        heartbeat_interval_ms: 100,
        snapshot_threshold: SNAPSHOT_THRESHOLD,
        proposal_timeout_ms: 3000
      }
    })
    const t0 = yield* Clock.currentTimeMillis
    yield* cluster.startAll()
    yield* say(`\nstarted ${options.nodes} nodes in ${secs((yield* Clock.currentTimeMillis) - t0)}:`)
    for (const spec of cluster.specs) {
      const { pid, ready } = cluster.process(spec.id)!
      const via = [
        ready.iroh !== null ? `iroh ${ready.iroh.endpointId.slice(0, 10)}…@${ready.iroh.addresses.join(",")}` : undefined,
        ready.grpc !== null ? `grpc ${ready.grpc}` : undefined
      ].filter((x) => x !== undefined).join("  ")
      yield* say(`  node ${spec.id}  pid ${lpad(pid, 7)}  http ${ready.http}  ${via}`)
    }
    const t1 = yield* Clock.currentTimeMillis
    const first = yield* cluster.waitForLeader()
    yield* say(`leader: node ${first.id} (term ${first.term}), elected ${secs((yield* Clock.currentTimeMillis) - t1)} after start`)
    const leaders: Array<number> = [first.id]
    let currentLeader = first.id

    // 2. Workload: clients spread over the nodes (followers forward writes and reads to the leader).
    yield* say(`\nworkload: ${options.clients} clients, PUT then linearizable GET, spread over all nodes`)
    const workload: WorkloadResult = yield* runWorkload({
      cluster,
      clients: options.clients,
      durationMs: options.durationS * 1000,
      readBack: true,
      requestTimeoutMs: 3000,
      target: (client, attempt) => {
        const running = cluster.running()
        return running[(client + attempt) % running.length] ?? currentLeader
      },
      onProgress: (p) =>
        Effect.gen(function*() {
          const leader = (yield* cluster.statuses(500)).find((s) => s.role === "leader")
          if (leader !== undefined && leader.id !== currentLeader) {
            currentLeader = leader.id
            leaders.push(leader.id)
          }
          yield* say(
            `  [${lpad((p.elapsedMs / 1000).toFixed(0), 3)} s] ${lpad(int(p.ops), 7)} ops  ` +
              `${lpad(int((p.opsSinceLast * 1000) / p.intervalMs), 6)} ops/s  ` +
              `PUT p50 ${ms(p.putLatency.percentile(50))} p99 ${ms(p.putLatency.percentile(99))}  ` +
              `commit ${leader?.commitIndex ?? "?"}  errors ${p.errors}`
          )
        })
    })

    // 3. Failover: SIGKILL the leader.
    const before = yield* cluster.waitForLeader()
    if (before.id !== currentLeader) leaders.push(before.id)
    currentLeader = before.id
    const victim = before.id
    // Its counters die with it: keep what it sent so far for the totals.
    const retired = tally(yield* getMetrics(cluster.spec(victim)))
    yield* say(`\nfailover: SIGKILL leader node ${victim} (term ${before.term}, commit ${before.commitIndex})`)
    const failover = yield* measureFailover(cluster, victim)
    const after = yield* cluster.waitForLeader()
    leaders.push(after.id)
    currentLeader = after.id
    yield* say(`  new leader node ${after.id} (term ${after.term}) committed a write ${ms(failover.failoverMs)} after the kill`)

    // 4. Write past the snapshot threshold while it is down, then restart it.
    const down = yield* runWorkload({
      cluster,
      clients: options.clients,
      durationMs: 60_000,
      readBack: false,
      requestTimeoutMs: 3000,
      target: leaderThenAny(cluster, () => currentLeader),
      maxPuts: SNAPSHOT_THRESHOLD * 3
    })
    const leaderNow = yield* cluster.waitForLeader()
    yield* say(`  wrote ${int(down.puts)} more entries while node ${victim} was down ` +
      `(leader commit ${leaderNow.commitIndex}, snapshot at ${leaderNow.snapshotIndex})`)
    const restartAt = yield* Clock.currentTimeMillis
    yield* cluster.start(victim)
    const target = leaderNow.commitIndex
    yield* say(`restarted node ${victim} (pid ${cluster.process(victim)!.pid}); catching up to ${target}`)
    let caughtUp: NodeStatus | undefined
    let lastApplied = -1
    while (caughtUp === undefined) {
      const status = (yield* cluster.statuses(1000, [victim])).find((s) => s.id === victim)
      const elapsed = (yield* Clock.currentTimeMillis) - restartAt
      if (status !== undefined && status.appliedIndex !== lastApplied) {
        lastApplied = status.appliedIndex
        const snap = status.events.lastSnapshotInstalled
        yield* say(`  [${lpad(secs(elapsed), 7)}] node ${victim}: ${status.role}, applied ${status.appliedIndex}/${target}` +
          (snap !== null ? `, installed snapshot ${snap.index} from node ${snap.from} (${int(snap.bytes)} bytes)` : ""))
      }
      if (status !== undefined && status.appliedIndex >= target) caughtUp = status
      else if (elapsed > 30_000) return yield* Effect.fail(new Error(`node ${victim} did not catch up within 30 s`))
      else yield* Effect.sleep(50)
    }
    const catchUpMs = (yield* Clock.currentTimeMillis) - restartAt
    const bySnapshot = caughtUp.events.snapshotsInstalled > 0
    yield* say(`  caught up in ${secs(catchUpMs)} (${bySnapshot ? "by snapshot, then log entries" : "from the log"})`)
    // The survivors redial the restarted node with backoff (up to max_backoff_ms): in dual mode
    // their traffic to it stays on gRPC until Iroh is back, which is worth seeing happen.
    if (options.transport === "dual") {
      const allLinksUp = (all: ReadonlyArray<NodeStatus>) => all.every((s) => s.peers.every((p) => p.links.every((l) => l.state === "connected")))
      let linksUp = allLinksUp(yield* cluster.statuses())
      while (!linksUp && (yield* Clock.currentTimeMillis) - restartAt < LINKS_UP_WAIT_MS) {
        yield* Effect.sleep(100)
        linksUp = allLinksUp(yield* cluster.statuses())
      }
      const waited = secs((yield* Clock.currentTimeMillis) - restartAt)
      yield* say(linksUp
        ? `  every Iroh and gRPC link up again ${waited} after the restart (routes back to the strategy's choice)`
        : `  some links still down ${waited} after the restart (see the routes below)`)
    }

    // 5. Summary.
    const statuses = [...(yield* cluster.statuses())].sort((a, b) => a.id - b.id)
    const scraped = yield* Effect.forEach(cluster.running(), (id) => Effect.map(getMetrics(cluster.spec(id)), (s) => [id, tally(s)] as const))
    const classes: Record<string, { messages: number; bytes: number }> = {}
    const add = (t: ReturnType<typeof tally>) => {
      for (const [cls, v] of Object.entries(t.byClass)) {
        const entry = (classes[cls] ??= { messages: 0, bytes: 0 })
        entry.messages += v.messages
        entry.bytes += v.bytes
      }
    }
    add(retired)
    for (const [, t] of scraped) add(t)
    const fallbacks = new Map<number, number>(scraped.map(([id, t]) => [id, t.fallbacks + (id === victim ? retired.fallbacks : 0)]))

    const opsPerS = (workload.ops * 1000) / workload.durationMs
    const errors = Object.entries(workload.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "none"
    yield* say(`\n== Summary (${options.transport}, ${options.nodes} nodes) ==`)
    const rows: Array<[string, string]> = [
      ["leader changes", `${leaders.length - 1} (${leaders.map((l) => `node ${l}`).join(" → ")})`],
      ["failover time", `${ms(failover.failoverMs)} (SIGKILL → first committed write, via node ${failover.acknowledgedBy})`],
      ["workload", `${options.clients} clients, ${secs(workload.durationMs)}, ${int(workload.puts)} PUT + ${int(workload.gets)} GET`],
      ["throughput", `${int(opsPerS)} ops/s (${int((workload.puts * 1000) / workload.durationMs)} writes/s)`],
      ["PUT latency p50 / p99", `${ms(workload.putLatency.percentile(50))} / ${ms(workload.putLatency.percentile(99))}`],
      ["GET latency p50 / p99", `${ms(workload.getLatency.percentile(50))} / ${ms(workload.getLatency.percentile(99))}`],
      ["client errors", errors],
      ["catch-up", `${secs(catchUpMs)}${bySnapshot ? `, snapshot ${caughtUp.events.lastSnapshotInstalled?.index ?? "?"} installed` : ""}`]
    ]
    for (const [k, v] of rows) yield* say(`  ${pad(k, 24)}${v}`)

    yield* say(`\n  messages sent by class (all nodes, from /metrics)`)
    yield* say(`  ${pad("class", 12)}${lpad("messages", 12)}${lpad("bytes", 14)}`)
    for (const cls of ["election", "heartbeat", "append", "snapshot"]) {
      const v = classes[cls] ?? { messages: 0, bytes: 0 }
      yield* say(`  ${pad(cls, 12)}${lpad(int(v.messages), 12)}${lpad(int(v.bytes), 14)}`)
    }

    yield* say(`\n  ${pad("node", 6)}${pad("role", 10)}${lpad("term", 5)}${lpad("commit", 8)}${lpad("applied", 9)}${lpad("snapshot", 10)}` +
      `${lpad("fallbacks", 11)}  routes (→peer transport)`)
    for (const s of statuses) {
      yield* say(`  ${pad(s.id, 6)}${pad(s.role, 10)}${lpad(s.term, 5)}${lpad(s.commitIndex, 8)}${lpad(s.appliedIndex, 9)}` +
        `${lpad(s.snapshotIndex, 10)}${lpad(fallbacks.get(s.id) ?? 0, 11)}  ${routesOf(s)}`)
    }
  }).pipe(
    Effect.onInterrupt(() => say("\ninterrupted: stopping the nodes and removing their files")),
    Effect.scoped
  )

const main = Effect.suspend(() => {
  const options = parseArgs(process.argv.slice(2))
  if (options instanceof UsageError) {
    return Effect.sync(() => {
      console.error(`${options.message}\n${USAGE}`)
      process.exitCode = 2
    })
  }
  return demo(options).pipe(
    Effect.catch((error) =>
      Effect.sync(() => {
        console.error(`demo failed: ${error.message}`)
        process.exitCode = 1
      })
    )
  )
})

NodeRuntime.runMain(main)
