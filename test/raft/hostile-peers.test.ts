/**
 * A Raft node against peers it must not trust: being in the transport's peer table does not
 * make a node a member of the Raft group. Node 4 is on the network but is no voter: whatever
 * it sends (vote requests at a far higher term, a vote request that claims a leadership transfer
 * and so skips the leader lease, heartbeats and appends claiming leadership, TimeoutNow,
 * snapshots valid or not) changes nothing, is answered with nothing, and is counted once per
 * message. A voter's snapshot that the state machine cannot restore is refused before it is
 * persisted, so the node restarts fine; a stored snapshot that does not restore stops the start
 * with `SnapshotUnusable` naming the file, and the recovery in docs/node.md brings the node back.
 * A seeded fuzz run sends 1,000 random messages of every type from two such nodes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, mkdirSync, renameSync } from "node:fs"
import { join } from "node:path"
import { MessageType, type NodeId, type RaftMessage } from "../../src/message/types.ts"
import { FileStorage } from "../../src/raft/file-storage.ts"
import { messagesRefused } from "../../src/raft/inbound-guard.ts"
import { encodeKvCommand, KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import type { SnapshotCapture } from "../../src/raft/state-machine.ts"
import { TRANSFER_CONTEXT } from "../../src/raft/messages.ts"
import { makeRaftNode } from "../../src/raft/node.ts"
import { counter } from "../support/metrics.ts"
import { prng } from "../support/prng.ts"
import { advance, RaftCluster, tempDir } from "../support/raft-cluster.ts"

const OUTSIDER: NodeId = 4
const VOTERS: ReadonlyArray<NodeId> = [1, 2, 3]
const GARBAGE = new TextEncoder().encode("{ not a snapshot")

const refused = (reason: "not_member" | "bad_snapshot") => counter(messagesRefused, { reason })

/** A KV state machine whose snapshots are garbage while `garbage` is set (a buggy leader). */
class SwitchableSnapshotKv extends KvStateMachine {
  garbage = false
  override snapshot(): Uint8Array {
    return this.garbage ? GARBAGE : super.snapshot()
  }
  override captureSnapshot(): SnapshotCapture {
    if (!this.garbage) return super.captureSnapshot()
    let taken = false
    return { next: () => (taken ? undefined : (taken = true, GARBAGE)) }
  }
}

/** Everything node 4 tries against `to`, at term `term` against a log ending at `last` (term `lastTerm`). */
const attacks = (to: NodeId, term: number, last: number, lastTerm: number): ReadonlyArray<RaftMessage> => [
  { msgType: MessageType.RequestPreVote, to, from: OUTSIDER, term, index: last + 1000, logTerm: term - 1 },
  // The transfer context skips the leader lease, so without the membership check this one
  // deposes a healthy leader.
  { msgType: MessageType.RequestVote, to, from: OUTSIDER, term, index: last + 1000, logTerm: term - 1, context: TRANSFER_CONTEXT },
  { msgType: MessageType.Heartbeat, to, from: OUTSIDER, term, commit: last },
  {
    msgType: MessageType.Append,
    to,
    from: OUTSIDER,
    term,
    index: last,
    logTerm: lastTerm,
    entries: [{ term, index: last + 1, data: encodeKvCommand({ op: "put", key: "k", value: "evil" }) }],
    commit: last + 1
  },
  { msgType: MessageType.TimeoutNow, to, from: OUTSIDER, term: lastTerm },
  {
    msgType: MessageType.Snapshot,
    to,
    from: OUTSIDER,
    term,
    snapshot: { metadata: { index: last + 1000, term }, data: new TextEncoder().encode(JSON.stringify([["k", "evil"]])) }
  },
  { msgType: MessageType.Snapshot, to, from: OUTSIDER, term, snapshot: { metadata: { index: last + 2000, term }, data: GARBAGE } }
]

describe("raft: a peer that is not a voter", () => {
  it.effect("never wins a vote, is never followed, never replaces the store, is never answered, and is counted", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("raft-hostile-")
      const cluster = yield* RaftCluster.make({ ids: VOTERS, outsiders: [OUTSIDER], dataDir })
      const leader = yield* cluster.awaitLeader()
      yield* cluster.node(leader.id).put("k", "v")
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex)
      const before = yield* cluster.statuses()
      const refusedBefore = yield* refused("not_member")
      const answers: Array<RaftMessage> = []
      cluster.net.observe((m) => {
        if (m.to === OUTSIDER) answers.push(m)
      })

      const rogue = yield* cluster.net.transport(OUTSIDER)
      const evilTerm = leader.term + 50
      let sent = 0
      // Over several election timeouts, so a node that had adopted the rogue's term or vote
      // would have shown it.
      for (let round = 0; round < 10; round++) {
        for (const s of before) {
          for (const m of attacks(s.id, evilTerm, s.lastLogIndex, s.term)) {
            yield* rogue.send(s.id, m)
            sent++
          }
        }
        yield* advance(100)
      }

      expect(answers).toEqual([])
      expect((yield* refused("not_member")) - refusedBefore).toBe(sent)
      const after = yield* cluster.statuses()
      for (const s of after) {
        const was = before.find((b) => b.id === s.id)!
        expect(s.term, `node ${s.id}`).toBe(was.term)
        expect(s.leader, `node ${s.id}`).toBe(leader.id)
        expect(s.vote, `node ${s.id}`).not.toBe(OUTSIDER)
        expect(s.snapshotIndex, `node ${s.id}`).toBe(was.snapshotIndex)
        expect(cluster.sm(s.id).get("k"), `node ${s.id}`).toBe("v")
        // Nothing from node 4 reached the disk.
        expect(existsSync(join(dataDir, `node${s.id}`, "snapshot")), `node ${s.id}`).toBe(false)
      }

      // The cluster still works and restarts from its files with the same data.
      yield* cluster.node(leader.id).put("k2", "v2")
      for (const id of VOTERS) yield* cluster.stop(id)
      for (const id of VOTERS) yield* cluster.start(id)
      const next = yield* cluster.awaitLeader()
      expect(next.id).not.toBe(OUTSIDER)
      expect(yield* cluster.node(next.id).read("k")).toBe("v")
      expect(yield* cluster.node(next.id).read("k2")).toBe("v2")
    }))
})

describe("raft: fuzzed messages from peers that are not voters", () => {
  it.effect("1,000 seeded random messages of every type from two outsiders change nothing, get no answer, and are each counted", () =>
    Effect.gen(function*() {
      const SEED = 20261206
      const random = prng(SEED)
      const int = (n: number) => Math.floor(random() * n)
      const outsiders: ReadonlyArray<NodeId> = [4, 5]
      const cluster = yield* RaftCluster.make({ ids: VOTERS, outsiders })
      const leader = yield* cluster.awaitLeader()
      yield* cluster.node(leader.id).put("k", "v")
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex)
      const before = yield* cluster.statuses()
      const refusedBefore = yield* refused("not_member")
      let answers = 0
      cluster.net.observe((m) => {
        if (outsiders.includes(m.to)) answers++
      })
      const rogues = new Map<NodeId, Effect.Success<ReturnType<typeof cluster.net.transport>>>()
      for (const id of outsiders) rogues.set(id, yield* cluster.net.transport(id))
      const bytes = () => Uint8Array.from({ length: int(24) }, () => int(256))
      for (let i = 0; i < 1000; i++) {
        const from = outsiders[int(outsiders.length)]!
        const to = VOTERS[int(VOTERS.length)]!
        const term = int(4) === 0 ? int(3) : leader.term + int(100)
        const m: RaftMessage = {
          msgType: int(14) as RaftMessage["msgType"],
          to,
          from,
          term,
          index: int(50),
          logTerm: int(term + 1),
          commit: int(50),
          reject: int(2) === 0,
          ...(int(2) === 0 ? { context: int(3) === 0 ? TRANSFER_CONTEXT : bytes() } : {}),
          ...(int(3) === 0 ? { entries: [{ term, index: int(50) + 1, data: int(2) === 0 ? bytes() : encodeKvCommand({ op: "put", key: "k", value: `fuzz${i}` }) }] } : {}),
          ...(int(4) === 0 ? { snapshot: { metadata: { index: int(1000), term }, data: int(2) === 0 ? bytes() : new TextEncoder().encode(JSON.stringify([["k", `fuzz${i}`]])) } } : {})
        }
        yield* rogues.get(from)!.send(to, m)
        if (i % 100 === 99) yield* advance(50)
      }
      yield* advance(1000)

      expect(answers, `seed ${SEED}`).toBe(0)
      expect((yield* refused("not_member")) - refusedBefore, `seed ${SEED}`).toBe(1000)
      for (const s of yield* cluster.statuses()) {
        const was = before.find((b) => b.id === s.id)!
        expect({ term: s.term, leader: s.leader, lastLogIndex: s.lastLogIndex, snapshotIndex: s.snapshotIndex }, `node ${s.id}, seed ${SEED}`)
          .toEqual({ term: was.term, leader: leader.id, lastLogIndex: was.lastLogIndex, snapshotIndex: was.snapshotIndex })
        expect(cluster.sm(s.id).get("k"), `node ${s.id}, seed ${SEED}`).toBe("v")
      }
    }))
})

describe("raft: snapshots the state machine cannot restore", () => {
  it.effect("a voter's garbage snapshot is refused before it is persisted; the follower restarts fine and catches up from a good one", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("raft-hostile-")
      const machines = new Map<NodeId, SwitchableSnapshotKv>()
      const cluster = yield* RaftCluster.make({
        ids: VOTERS,
        dataDir,
        raft: { snapshot_threshold: 10, snapshot_timeout_ms: 2000 },
        stateMachine: (id) => {
          const sm = new SwitchableSnapshotKv()
          machines.set(id, sm)
          return sm
        }
      })
      const leader = yield* cluster.awaitLeader()
      const follower = VOTERS.find((id) => id !== leader.id)!
      yield* cluster.stop(follower)
      machines.get(leader.id)!.garbage = true
      for (let i = 0; i < 15; i++) yield* cluster.node(leader.id).put(`a${i}`, `${i}`)
      expect((yield* cluster.status(leader.id)).snapshotIndex).toBeGreaterThanOrEqual(10)

      const refusedBefore = yield* refused("bad_snapshot")
      yield* cluster.start(follower)
      yield* cluster.waitFor(Effect.map(refused("bad_snapshot"), (n) => n > refusedBefore), 10_000, "the garbage snapshot refused")
      const behind = yield* cluster.status(follower)
      expect(behind.snapshotIndex).toBe(0)
      expect(existsSync(join(dataDir, `node${follower}`, "snapshot"))).toBe(false)
      // It starts again from its files: nothing unusable was stored.
      yield* cluster.stop(follower)
      yield* cluster.start(follower)

      // Once the leader snapshots properly again, the follower installs that one.
      machines.get(leader.id)!.garbage = false
      for (let i = 0; i < 15; i++) yield* cluster.node(leader.id).put(`b${i}`, `${i}`)
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex, [follower], 20_000)
      expect((yield* cluster.status(follower)).snapshotIndex).toBeGreaterThan(0)
      for (let i = 0; i < 15; i++) {
        expect(cluster.sm(follower).get(`a${i}`)).toBe(`${i}`)
        expect(cluster.sm(follower).get(`b${i}`)).toBe(`${i}`)
      }
    }))

  it.effect("a stored snapshot that does not restore stops the start with SnapshotUnusable naming the file; the documented recovery brings the node back", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("raft-hostile-")
      const cluster = yield* RaftCluster.make({ ids: VOTERS, dataDir, raft: { snapshot_threshold: 10 } })
      const leader = yield* cluster.awaitLeader()
      for (let i = 0; i < 25; i++) yield* cluster.node(leader.id).put(`k${i}`, `${i}`)
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex)
      const follower = VOTERS.find((id) => id !== leader.id)!
      const before = yield* cluster.status(follower)
      expect(before.snapshotIndex).toBeGreaterThanOrEqual(10)
      yield* cluster.stop(follower)

      // Damage its snapshot in a way the record checksum cannot see: the data is garbage.
      const dir = join(dataDir, `node${follower}`)
      yield* Effect.scoped(Effect.gen(function*() {
        const storage = yield* FileStorage.make(dir, "always")
        const stored = (yield* storage.load).snapshot!
        yield* storage.write({ snapshot: { metadata: stored.metadata, data: GARBAGE } })
      })).pipe(Effect.orDie)

      const error = yield* Effect.scoped(Effect.gen(function*() {
        const storage = yield* FileStorage.make(dir, cluster.config.sync)
        const transport = yield* cluster.net.transport(follower)
        return yield* makeRaftNode({ config: cluster.config, transport, storage, stateMachine: new KvStateMachine() })
      })).pipe(Effect.flip)
      expect(error._tag).toBe("SnapshotUnusable")
      expect(error.message).toContain(join(dir, "snapshot"))
      expect(error.message).toContain(`index ${before.snapshotIndex}`)
      expect(error.message).toContain("docs/node.md")

      // docs/node.md, "A snapshot that does not restore": move `snapshot` and `log` aside, keep
      // `hardstate.json` (the term and vote), start the node.
      mkdirSync(join(dir, "quarantine"))
      renameSync(join(dir, "snapshot"), join(dir, "quarantine", "snapshot"))
      renameSync(join(dir, "log"), join(dir, "quarantine", "log"))
      yield* cluster.start(follower)
      const restarted = yield* cluster.status(follower)
      expect(restarted.term).toBe(before.term)
      expect(restarted.vote).toBe(before.vote)
      // The leader still counts the entries the node held as stored there; it learns otherwise
      // when the next append is rejected (a real restart also drops the link, which makes the
      // leader probe at once) and then sends its snapshot.
      yield* cluster.node(leader.id).put("after", "recovery")
      yield* cluster.awaitApplied((yield* cluster.status(leader.id)).commitIndex, [follower])
      for (let i = 0; i < 25; i++) expect(cluster.sm(follower).get(`k${i}`)).toBe(`${i}`)
      expect(cluster.sm(follower).get("after")).toBe("recovery")
      expect(cluster.events.some((e) => e._tag === "SnapshotInstalled" && e.node === follower)).toBe(true)
    }))
})
