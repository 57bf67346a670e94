/**
 * How often each member of an Iroh cluster calls into the binding, by method, per acknowledged
 * put (or per second when idle), and the bytes it hands to `writeAll`. Each call of the binding
 * wakes one of its threads and the completion wakes the caller back, which on a VM costs far
 * more than the call's own work (docs/design.md, "The Raft node's cost per write and at rest"),
 * so calls per put are what an Iroh cluster's CPU follows.
 *
 *   npx tsx bench/tools/binding-calls.ts [clients=1] [seconds=10]
 *
 * A three-node cluster on loopback runs the cluster phase's workload (`clients` 0: idle) after a
 * warm-up; the counts come from `binding-calls-hooks.ts`, loaded into every node.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { LocalCluster } from "../../src/node/local-cluster.ts"
import { clusterWorkload } from "../phases/cluster.ts"

const clients = Number(process.argv[2] ?? 1)
const seconds = Number(process.argv[3] ?? 10)
/** After the warm-up load, so that the idle figures are of a cluster that has run. */
const SETTLE_MS = 5_000
/** How long a node may take to write its counts after the signal. */
const COUNTS_TIMEOUT_MS = 5_000
const HOOKS = fileURLToPath(new URL("./binding-calls-hooks.ts", import.meta.url))

const program = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "raft-binding-calls-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  // The nodes inherit this process's environment when they are spawned.
  process.env["BINDING_CALLS_DIR"] = dir
  const cluster = yield* LocalCluster.make({
    dir,
    nodes: 3,
    transport: "iroh",
    logLevel: "warn",
    // tsx first: the hooks are TypeScript.
    nodeFlags: ["--import", "tsx", "--import", HOOKS]
  })
  yield* cluster.startAll()
  const leader = (yield* cluster.waitForLeader()).id
  const pidOf = (id: number) => cluster.process(id)?.pid ?? -1
  yield* clusterWorkload(cluster, () => leader, 8, 3000)
  yield* Effect.sleep(SETTLE_MS)
  const countsFile = (id: number) => join(dir, `${pidOf(id)}.json`)
  /** Every member's counts so far: each writes its file when signalled. */
  const counts = Effect.gen(function*() {
    for (const id of cluster.ids) {
      rmSync(countsFile(id), { force: true })
      process.kill(pidOf(id), "SIGUSR1")
    }
    yield* Effect.sleep(20).pipe(
      Effect.repeat({ until: () => cluster.ids.every((id) => existsSync(countsFile(id))) }),
      Effect.timeoutOrElse({ duration: COUNTS_TIMEOUT_MS, orElse: () => Effect.fail(new Error(`no counts from the nodes within ${COUNTS_TIMEOUT_MS} ms`)) })
    )
    return new Map(cluster.ids.map((id) => [id, JSON.parse(readFileSync(countsFile(id), "utf8")) as Record<string, number>]))
  })
  const before = yield* counts
  const puts = clients > 0 ? (yield* clusterWorkload(cluster, () => leader, clients, seconds * 1000)).puts : 0
  if (clients === 0) yield* Effect.sleep(seconds * 1000)
  const after = yield* counts
  const per = clients > 0 ? puts : seconds
  const lines = cluster.ids.map((id) => {
    const a = before.get(id)!
    const b = after.get(id)!
    const calls = Object.keys(b)
      .map((key) => [key, (b[key]! - (a[key] ?? 0)) / per] as const)
      .filter(([, n]) => n > 0)
      .map(([key, n]) => `${key} ${n.toFixed(key.endsWith("bytes") ? 0 : 2)}`)
    return `node ${id}${id === leader ? " (leader)" : ""}: ${calls.join(", ")}`
  })
  yield* Effect.sync(() =>
    void process.stdout.write(
      [`iroh, ${clients} client(s), ${seconds} s: binding calls per ${clients > 0 ? `acknowledged put (${puts} puts)` : "second"}`, ...lines].join("\n") + "\n"
    )
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
