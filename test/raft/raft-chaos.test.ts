/**
 * Randomised faults against the safety properties of Figure 3, in the spirit of hashicorp/raft's
 * `fuzzy` tests: partitions, lost messages, crashes and restarts while clients write, then check
 *
 * - Election Safety: at most one leader per term;
 * - State Machine Safety: no two nodes ever apply different entries at the same index;
 * - linearizable reads: a read that succeeds sees every write acknowledged before it started;
 * - durability: every write that was acknowledged is in every node's final state.
 *
 * Seeded: a failure replays with the same seed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Random } from "effect"
import type { Entry } from "../../src/message/types.ts"
import { KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import { prng } from "../support/prng.ts"
import { advance, leadersByTerm, RaftCluster, tempDir } from "../support/raft-cluster.ts"

/** Every entry any node applies, by index: a second, different one is a safety violation. */
class AppliedLog {
  readonly byIndex = new Map<number, string>()
  readonly violations: Array<string> = []

  record(node: number, entry: Entry): void {
    const value = `${entry.term}:${new TextDecoder().decode(entry.data)}`
    const seen = this.byIndex.get(entry.index)
    if (seen === undefined) this.byIndex.set(entry.index, value)
    else if (seen !== value) this.violations.push(`node ${node} applied ${value} at ${entry.index}, another node ${seen}`)
  }
}

class RecordingKv extends KvStateMachine {
  constructor(private readonly node: number, private readonly log: AppliedLog) {
    super()
  }

  override apply(entry: Entry) {
    this.log.record(this.node, entry)
    return super.apply(entry)
  }
}

const chaos = (seed: number, options: { readonly preVote: boolean; readonly files?: boolean }) =>
  Effect.gen(function*() {
    const dataDir = options.files === true ? yield* tempDir("raft-chaos-") : undefined
    const rand = prng(seed)
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rand() * xs.length)]!
    const applied = new AppliedLog()
    const ids = [1, 2, 3, 4, 5]
    const cluster = yield* RaftCluster.make({
      ids,
      // A lost snapshot is retried after snapshot_timeout_ms; keep that short here.
      raft: { snapshot_threshold: 15, pre_vote: options.preVote, snapshot_timeout_ms: 2_000, sync: "never" },
      stateMachine: (id) => new RecordingKv(id, applied),
      ...(dataDir !== undefined ? { dataDir } : {})
    })
    const acknowledged = new Map<string, string>()
    const clients: Array<Fiber.Fiber<void>> = []
    const staleReads: Array<string> = []
    const failures: Array<string> = []
    /** Starts a client request; failing is allowed under faults (NotLeader / NoQuorum / ProposalDropped): count it. */
    const client = <A>(request: Effect.Effect<A, { readonly _tag: string }>, onSuccess: (a: A) => void) =>
      Effect.forkChild(
        request.pipe(
          Effect.tap((a) => Effect.sync(() => onSuccess(a))),
          Effect.catch((e) => Effect.sync(() => failures.push(e._tag))),
          Effect.asVoid
        ),
        { startImmediately: true }
      ).pipe(Effect.map((fiber) => clients.push(fiber)))
    let reads = 0
    let dropRate = 0
    cluster.net.setFilter(() => rand() >= dropRate)
    let n = 0

    for (let round = 0; round < 60; round++) {
      const action = rand()
      if (action < 0.15) {
        cluster.net.isolate(pick(ids))
      } else if (action < 0.3) {
        const shuffled = [...ids].sort(() => rand() - 0.5)
        const cut = 1 + Math.floor(rand() * 4)
        cluster.net.partition(shuffled.slice(0, cut), shuffled.slice(cut))
        cluster.net.setFilter(() => rand() >= dropRate)
      } else if (action < 0.45) {
        cluster.net.heal()
        dropRate = 0
        cluster.net.setFilter(() => rand() >= dropRate)
      } else if (action < 0.55) {
        const running = cluster.runningIds()
        if (running.length > 2) yield* cluster.stop(pick(running))
      } else if (action < 0.7) {
        const stopped = ids.filter((id) => !cluster.runningIds().includes(id))
        if (stopped.length > 0) yield* cluster.start(pick(stopped))
      } else if (action < 0.8) {
        dropRate = rand() * 0.3
      }
      // A few clients write through random running nodes.
      for (let k = 0; k < 3; k++) {
        const target = pick(cluster.runningIds())
        const key = `k${n++}`
        const value = `v${seed}-${round}-${k}`
        yield* client(cluster.node(target).put(key, value, { timeoutMs: 1_000 }), (r) => r.ok && acknowledged.set(key, value))
      }
      // Linearizable reads: a key whose write was acknowledged before the read started must be
      // seen by any read that succeeds, through whichever node it is asked.
      const done = [...acknowledged]
      if (done.length > 0) {
        const [key, value] = pick(done)
        yield* client(cluster.node(pick(cluster.runningIds())).read(key, { timeoutMs: 1_000 }), (got) => {
          reads++
          if (got !== value) staleReads.push(`${key}: read ${got}, acknowledged ${value}`)
        })
      }
      yield* advance(20 + Math.floor(rand() * 600))
      if (process.env["RAFT_CHAOS_VERBOSE"] === "2") {
        const st = yield* cluster.statuses()
        console.log(`round ${round} action ${action.toFixed(2)} drop ${dropRate.toFixed(2)}: ` +
          st.map((x) => `${x.id}:${x.role[0]}${x.term}/c${x.commitIndex}/l${x.lastLogIndex}`).join(" "))
      }
    }

    // Calm: everyone up and connected, all writes settled, one more commit in the final term.
    cluster.net.heal()
    for (const id of ids) yield* cluster.start(id)
    yield* advance(1_500)
    for (const f of clients) yield* Fiber.join(f)
    const leader = yield* cluster.awaitLeader(ids, 30_000)
    yield* cluster.node(leader.id).put("final", "x")
    yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex, ids, 30_000)

    if (process.env["RAFT_CHAOS_VERBOSE"] !== undefined) {
      console.log(`seed ${seed}: ${acknowledged.size} acknowledged of ${n}, ${reads} reads, ${applied.byIndex.size} indexes applied, ` +
        `final term ${leader.term}, ${cluster.events.filter((e) => e._tag === "SnapshotInstalled").length} snapshots installed, ` +
        `${failures.length} failed requests`)
    }
    expect(applied.violations).toEqual([])
    expect(staleReads).toEqual([])
    for (const [term, leaders] of leadersByTerm(cluster.events)) expect([term, leaders.size]).toEqual([term, 1])
    expect(acknowledged.size).toBeGreaterThan(0)
    for (const id of ids) {
      for (const [key, value] of acknowledged) expect([id, key, cluster.sm(id).get(key)]).toEqual([id, key, value])
    }
  }).pipe(Random.withSeed(seed))

describe("raft under random faults", () => {
  for (const seed of (process.env["RAFT_CHAOS_SEEDS"] ?? "1,2,3,4").split(",").map(Number)) {
    it.effect(`seed ${seed}, pre-vote on: safety holds and acknowledged writes survive`, () => chaos(seed, { preVote: true }))
  }
  for (const seed of (process.env["RAFT_CHAOS_NOPREVOTE_SEEDS"] ?? "5,6").split(",").map(Number)) {
    it.effect(`seed ${seed}, pre-vote off: safety holds and acknowledged writes survive`, () => chaos(seed, { preVote: false }))
  }
  for (const seed of (process.env["RAFT_CHAOS_FILE_SEEDS"] ?? "7,8").split(",").map(Number)) {
    it.effect(`seed ${seed}, file storage (restarts recover from disk): safety holds and acknowledged writes survive`, () =>
      chaos(seed, { preVote: true, files: true }))
  }
})
