/**
 * The protocol core, driven by hand (no fibers, no clock): the rules whose violation would not
 * show up as a failed happy path: §5.4.2 commitment, §5.4.1 election restriction, §5.3 log
 * matching, §9.6 pre-vote, §5.1 step-down, plus the config schema and the KV state machine.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { type Entry, MessageType, type RaftMessage } from "../../src/message/types.ts"
import { decodeRaftConfig, parseRaftConfigToml } from "../../src/raft/config.ts"
import { RaftCore } from "../../src/raft/core.ts"
import { encodeKvCommand, KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import { RaftLog } from "../../src/raft/log.ts"
import { Membership } from "../../src/raft/membership.ts"
import { Progress } from "../../src/raft/progress.ts"
import { prng } from "../support/prng.ts"
import type { PersistedState } from "../../src/raft/storage.ts"

const e = (index: number, term: number): Entry => ({ index, term })

const makeCore = (id: number, state: Partial<PersistedState> = {}, preVote = true, maxAppendBytes = 1024 * 1024) =>
  new RaftCore({
    id,
    membership: new Membership([1, 2, 3]),
    electionTimeoutMinMs: 300,
    electionTimeoutMaxMs: 600,
    heartbeatIntervalMs: 50,
    maxInflightAppends: 8,
    maxEntriesPerAppend: 100,
    maxAppendBytes,
    preVote,
    snapshotTimeoutMs: 10_000,
    random: () => 0
  }, {
    hardState: state.hardState ?? { term: 0, vote: 0, commit: 0 },
    snapshot: state.snapshot,
    entries: state.entries ?? []
  }, 0)

/** One round carried out as the node does: its writes complete, then what it sent. */
const sent = (core: RaftCore): ReadonlyArray<RaftMessage> => {
  const ready = core.ready()
  core.persistedTo(core.log.lastIndex(), core.log.lastTerm())
  return ready.messages
}

/** Makes `core` (node 1) leader with votes from node 2; returns the messages it then sent. */
const elect = (core: RaftCore, now = 1_000) => {
  core.tick(now)
  const preVotes = sent(core)
  expect(preVotes.every((m) => m.msgType === MessageType.RequestPreVote && m.term === core.term + 1)).toBe(true)
  core.step({ msgType: MessageType.RequestPreVoteResponse, from: 2, to: 1, term: core.term + 1 }, now)
  const votes = sent(core)
  expect(votes.every((m) => m.msgType === MessageType.RequestVote)).toBe(true)
  core.step({ msgType: MessageType.RequestVoteResponse, from: 2, to: 1, term: core.term }, now)
  expect(core.role).toBe("leader")
  return sent(core)
}

describe("raft core", () => {
  it("§5.4.2: entries of an earlier term are not committed by counting replicas, only with one of the current term", () => {
    // Figure 8's situation: the new leader holds an entry of term 2 that a majority now stores.
    const core = makeCore(1, { hardState: { term: 3, vote: 0, commit: 1 }, entries: [e(1, 1), e(2, 2)] })
    elect(core)
    expect(core.term).toBe(4)
    expect(core.log.lastIndex()).toBe(3) // the leader's no-op (§8)
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 4, index: 2 }, 1_000)
    core.ready()
    expect(core.log.committed).toBe(1)
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 4, index: 3 }, 1_000)
    core.ready()
    expect(core.log.committed).toBe(3)
  })

  it("§5.4.1: a vote is refused to a candidate whose log is less up-to-date, granted otherwise", () => {
    const voter = makeCore(3, { hardState: { term: 2, vote: 0, commit: 0 }, entries: [e(1, 1), e(2, 2)] })
    // Later term but older last log term: refused (and the term is adopted, §5.1).
    voter.step({ msgType: MessageType.RequestVote, from: 1, to: 3, term: 3, index: 5, logTerm: 1 }, 10_000)
    const refused = sent(voter)[0]!
    expect(refused).toMatchObject({ msgType: MessageType.RequestVoteResponse, reject: true, term: 3 })
    expect(voter.vote).toBe(0)
    // Same last term, shorter log: refused.
    voter.step({ msgType: MessageType.RequestVote, from: 1, to: 3, term: 3, index: 1, logTerm: 2 }, 10_000)
    expect(sent(voter)[0]).toMatchObject({ reject: true })
    // At least as up-to-date: granted, once per term.
    voter.step({ msgType: MessageType.RequestVote, from: 1, to: 3, term: 3, index: 2, logTerm: 2 }, 10_000)
    const ready = voter.ready()
    expect(ready.messages[0]).toMatchObject({ reject: false, term: 3 })
    // The vote is persisted in the same ready as the response.
    expect(ready.hardState).toEqual({ term: 3, vote: 1, commit: 0 })
    voter.step({ msgType: MessageType.RequestVote, from: 2, to: 3, term: 3, index: 9, logTerm: 3 }, 10_000)
    expect(sent(voter)[0]).toMatchObject({ reject: true })
  })

  it("§9.6: a pre-vote request changes neither the receiver's term nor its vote", () => {
    const voter = makeCore(3, { hardState: { term: 2, vote: 2, commit: 0 }, entries: [e(1, 1)] })
    voter.step({ msgType: MessageType.RequestPreVote, from: 1, to: 3, term: 3, index: 1, logTerm: 1 }, 10_000)
    const ready = voter.ready()
    expect(ready.messages[0]).toMatchObject({ msgType: MessageType.RequestPreVoteResponse, reject: false, term: 3 })
    expect(ready.hardState).toBeUndefined()
    expect(voter.term).toBe(2)
    expect(voter.vote).toBe(2)
  })

  it("thesis §4.2.3: a follower that heard from its leader recently ignores a disruptive vote request", () => {
    const follower = makeCore(3)
    follower.step({ msgType: MessageType.Heartbeat, from: 1, to: 3, term: 5, commit: 0 }, 1_000)
    follower.ready()
    follower.step({ msgType: MessageType.RequestVote, from: 2, to: 3, term: 6, index: 0, logTerm: 0 }, 1_100)
    expect(sent(follower)).toEqual([])
    expect(follower.term).toBe(5)
    // After the minimum election timeout without the leader it considers the request.
    follower.step({ msgType: MessageType.RequestVote, from: 2, to: 3, term: 6, index: 0, logTerm: 0 }, 1_400)
    expect(sent(follower)[0]).toMatchObject({ reject: false, term: 6 })
  })

  it("a follower whose every link to its leader is down ends the lease and campaigns soon; a heartbeat restores both", () => {
    const follower = makeCore(3)
    follower.step({ msgType: MessageType.Heartbeat, from: 1, to: 3, term: 5, commit: 0 }, 1_000)
    follower.ready()
    expect(follower.nextTimerAt()).toBe(1_300)
    expect(follower.leaderUnreachable(2, 1_050)).toBeUndefined() // not its leader
    expect(follower.leaderUnreachable(1, 1_050)).toBe(1_050) // the spread's draw is 0 here
    follower.step({ msgType: MessageType.RequestVote, from: 2, to: 3, term: 6, index: 0, logTerm: 0 }, 1_060)
    expect(sent(follower)[0]).toMatchObject({ reject: false, term: 6 })

    const heard = makeCore(3)
    heard.step({ msgType: MessageType.Heartbeat, from: 1, to: 3, term: 5, commit: 0 }, 1_000)
    heard.ready()
    heard.leaderUnreachable(1, 1_050)
    heard.step({ msgType: MessageType.Heartbeat, from: 1, to: 3, term: 5, commit: 0 }, 1_060)
    heard.ready()
    expect(heard.nextTimerAt()).toBe(1_360)
    heard.step({ msgType: MessageType.RequestVote, from: 2, to: 3, term: 6, index: 0, logTerm: 0 }, 1_100)
    expect(sent(heard)).toEqual([])
    // A leader or candidate has no leader to lose.
    const leader = makeCore(1)
    elect(leader)
    expect(leader.leaderUnreachable(2, 2_000)).toBeUndefined()
  })

  it("§5.1: a leader steps down when it sees a higher term", () => {
    const core = makeCore(1)
    elect(core)
    core.step({ msgType: MessageType.AppendResponse, from: 3, to: 1, term: core.term + 1, reject: true }, 1_000)
    expect(core.role).toBe("follower")
    expect(core.leader).toBeUndefined()
  })

  it("§5.3: a follower rejects an append whose previous entry does not match, with a hint to back off", () => {
    // The follower holds a run of term-3 entries the leader (whose entries 3..5 have term 2) never had.
    const follower = makeCore(2, {
      hardState: { term: 4, vote: 0, commit: 0 },
      entries: [e(1, 1), e(2, 1), e(3, 3), e(4, 3), e(5, 3)]
    })
    follower.step({ msgType: MessageType.Append, from: 1, to: 2, term: 4, index: 5, logTerm: 2, entries: [e(6, 4)], commit: 0 }, 0)
    const reply = sent(follower)[0]!
    // None of the follower's term-3 entries can match a term-2 entry: skip the whole run.
    expect(reply).toMatchObject({ msgType: MessageType.AppendResponse, reject: true, index: 5, rejectHint: 2, logTerm: 1 })
    // Retried from the hint, the conflicting suffix goes (§5.3) and the commit follows (rule 5).
    follower.step({
      msgType: MessageType.Append,
      from: 1,
      to: 2,
      term: 4,
      index: 2,
      logTerm: 1,
      entries: [e(3, 2), e(4, 2)],
      commit: 9
    }, 0)
    const ready = follower.ready()
    expect(ready.messages[0]).toMatchObject({ msgType: MessageType.AppendResponse, index: 4 })
    expect(ready.messages[0]!.reject).not.toBe(true)
    expect(ready.entries).toEqual([e(3, 2), e(4, 2)])
    expect(follower.log.lastIndex()).toBe(4)
    expect(follower.log.committed).toBe(4)
  })

  it("an append to a lagging follower stays under the byte cap, and a larger entry still goes alone", () => {
    const big = (index: number, bytes: number): Entry => ({ index, term: 1, data: new Uint8Array(bytes) })
    const core = makeCore(1, {
      hardState: { term: 1, vote: 0, commit: 0 },
      entries: [big(1, 400_000), big(2, 400_000), big(3, 400_000), big(4, 2_000_000), big(5, 10)]
    })
    const probes = elect(core).filter((m) => m.msgType === MessageType.Append && m.to === 2)
    expect(probes).toHaveLength(1)
    // Follower 2 has nothing: it rejects with hint 0 and the leader resends from index 1.
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: core.term, reject: true, index: probes[0]!.index!, rejectHint: 0, logTerm: 0 }, 1_000)
    const first = sent(core).find((m) => m.msgType === MessageType.Append && m.to === 2)!
    expect(first.entries!.map((x) => x.index)).toEqual([1, 2]) // a third 400 kB entry would pass 1 MiB
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: core.term, index: 2 }, 1_000)
    const next = sent(core).filter((m) => m.msgType === MessageType.Append && m.to === 2)
    expect(next.map((m) => m.entries!.map((x) => x.index))).toEqual([[3], [4], [5, 6]])
  })

  it("§5.3: an outdated append whose entries all match does not truncate later entries", () => {
    const log = new RaftLog(0, 0, [e(1, 1), e(2, 1), e(3, 1)], 0)
    expect(log.maybeAppend(0, 0, [e(1, 1)])).toBe(1)
    expect(log.lastIndex()).toBe(3)
    expect(log.maybeAppend(1, 1, [e(2, 1), e(3, 2), e(4, 2)])).toBe(4)
    expect(log.slice(1, 4).map((x) => x.term)).toEqual([1, 1, 2, 2])
    expect(log.maybeAppend(3, 1, [])).toBeUndefined()
  })

  it("thesis §10.2.1: the leader replicates while its write is in flight and counts itself only once durable", () => {
    const core = makeCore(1)
    elect(core)
    // Both followers hold the no-op, so their progress replicates (pipelines) from here.
    for (const from of [2, 3]) core.step({ msgType: MessageType.AppendResponse, from, to: 1, term: core.term, index: 1 }, 1_000)
    sent(core)
    const proposed = core.propose(new Uint8Array([1]), new Uint8Array([9]), 1_000)
    expect(proposed._tag).toBe("Appended")
    const index = core.log.lastIndex()
    const round = core.ready()
    // The append goes out with the entry handed to storage, before the write completes.
    expect(round.entries.map((x) => x.index)).toEqual([index])
    expect(round.messages.some((m) => m.msgType === MessageType.Append && m.entries?.some((x) => x.index === index))).toBe(true)
    // A follower's acknowledgement alone is one vote of three: no quorum without the leader's disk.
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: core.term, index }, 1_000)
    core.ready()
    expect(core.log.committed).toBe(index - 1)
    core.persistedTo(index, core.term)
    core.ready()
    expect(core.log.committed).toBe(index)
  })

  it("a completed write of entries replaced since (§5.3) does not make their replacements durable", () => {
    const log = new RaftLog(0, 0, [e(1, 1)], 1)
    log.maybeAppend(1, 1, [e(2, 1), e(3, 1)])
    log.maybeAppend(1, 1, [e(2, 2)]) // a new leader's entry replaces 2 and 3 while their write is in flight
    log.stableTo(3, 1) // that write completes: entry 3 is gone, so it proves nothing
    expect(log.durable).toBe(1)
    log.stableTo(2, 2)
    expect(log.durable).toBe(2)
  })

  it("refuses to truncate a committed entry (it would break Leader Completeness)", () => {
    const log = new RaftLog(0, 0, [e(1, 1), e(2, 1)], 2)
    expect(() => log.maybeAppend(1, 1, [e(2, 2)])).toThrow(/conflict at committed index 2/)
  })

  it("read index: the leader confirms with a majority heartbeat round before answering (§6.4)", () => {
    const core = makeCore(1)
    elect(core)
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: core.term, index: 1 }, 1_000)
    core.ready()
    expect(core.log.committed).toBe(1)
    const ctx = new TextEncoder().encode("read-1")
    core.readIndex(ctx, 1_000)
    const ready = core.ready()
    expect(ready.readStates).toEqual([])
    const heartbeats = ready.messages.filter((m) => m.msgType === MessageType.Heartbeat)
    expect(heartbeats.map((m) => m.to).sort()).toEqual([2, 3])
    expect(heartbeats.every((m) => new TextDecoder().decode(m.context) === "read-1")).toBe(true)
    core.step({ msgType: MessageType.HeartbeatResponse, from: 3, to: 1, term: core.term, context: ctx }, 1_000)
    expect(core.ready().readStates).toEqual([{ key: Buffer.from("read-1").toString("hex"), index: 1 }])
  })

  it("a new commit index rides on the next message to a follower; one that waits on it is told at once", () => {
    const core = makeCore(1)
    elect(core)
    // The no-op commits once the followers have it (both then in step: replicating).
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 1, index: 1 }, 1_000)
    core.step({ msgType: MessageType.AppendResponse, from: 3, to: 1, term: 1, index: 1 }, 1_000)
    sent(core)
    core.tick(1_000)
    sent(core)
    const appendsTo = (ms: ReadonlyArray<RaftMessage>, to: number) => ms.filter((m) => m.msgType === MessageType.Append && m.to === to)

    // A write of the leader's own commits: no empty append goes out for it.
    core.propose(Uint8Array.of(1), Uint8Array.of(7), 1_001)
    const carried = sent(core)
    expect(appendsTo(carried, 2)).toHaveLength(1)
    expect(appendsTo(carried, 2)[0]!.commit).toBe(1)
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 1, index: 2 }, 1_002)
    expect(core.log.committed).toBe(2)
    expect(appendsTo(sent(core), 2)).toHaveLength(0)

    // The next write's append carries it...
    core.propose(Uint8Array.of(2), Uint8Array.of(8), 1_003)
    const next = appendsTo(sent(core), 2)
    expect(next.map((m) => [m.entries?.length, m.commit])).toEqual([[1, 2]])
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 1, index: 3 }, 1_004)
    expect(core.log.committed).toBe(3)
    expect(appendsTo(sent(core), 3)).toHaveLength(0)

    // ...and with none, the next tick sends what is still untold, to every follower.
    core.tick(1_010)
    const onTick = sent(core).filter((m) => m.msgType === MessageType.Append)
    expect(onTick.map((m) => [m.to, m.commit]).sort()).toEqual([[2, 3], [3, 3]])
    core.tick(1_020)
    expect(sent(core).filter((m) => m.msgType === MessageType.Append)).toHaveLength(0)

    // A write node 3 forwarded: node 3 applies it only once it knows it committed.
    core.step({ msgType: MessageType.Propose, from: 3, to: 1, term: 0, entries: [{ index: 0, term: 0, data: Uint8Array.of(3), context: Uint8Array.of(9) }] }, 1_030)
    sent(core)
    core.step({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 1, index: 4 }, 1_031)
    const told = sent(core)
    expect(appendsTo(told, 3).map((m) => m.commit)).toEqual([4])
    expect(appendsTo(told, 2)).toHaveLength(0)
  })
})

describe("raft config", () => {
  it.effect("defaults", () =>
    Effect.gen(function*() {
      expect(yield* decodeRaftConfig({ voters: [1, 2, 3] })).toEqual({
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        heartbeat_interval_ms: 100,
        max_inflight_appends: 1,
        max_entries_per_append: 256,
        max_append_bytes: 1048576,
        snapshot_threshold: 10000,
        snapshot_threshold_bytes: 67108864,
        sync: "batch",
        pre_vote: true,
        voters: [1, 2, 3],
        proposal_timeout_ms: 5000,
        snapshot_timeout_ms: 60000
      })
    }))

  it.effect("errors name the [raft] field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeRaftConfig({
        voters: [1, 2, 2],
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 200,
        sync: "sometimes",
        bogus: 1
      }))
      expect(error._tag).toBe("ConfigError")
      const paths = error.issues.map((i) => i.path)
      expect(paths).toContain("raft.sync")
      expect(paths).toContain("raft.bogus")
      const rules = yield* Effect.flip(decodeRaftConfig({ voters: [1, 2, 2], election_timeout_max_ms: 200 }))
      expect(rules.issues.map((i) => i.path)).toEqual(["raft.election_timeout_max_ms", "raft.voters[2]"])
      expect((yield* Effect.flip(decodeRaftConfig({}))).path).toBe("raft.voters")
    }))

  it.effect("parses the [raft] table of a TOML document", () =>
    Effect.gen(function*() {
      const config = yield* parseRaftConfigToml([
        "[transport]",
        "node_id = 1",
        "[raft]",
        "voters = [1, 2, 3]",
        "data_dir = \"/var/lib/raft\"",
        "sync = \"always\""
      ].join("\n"))
      expect(config.data_dir).toBe("/var/lib/raft")
      expect(config.sync).toBe("always")
    }))
})

describe("kv state machine", () => {
  it("applies commands deterministically and round-trips through a snapshot", () => {
    const sm = new KvStateMachine()
    const apply = (data: Uint8Array, index: number) => sm.apply({ index, term: 1, data })
    expect(apply(encodeKvCommand({ op: "put", key: "b", value: "2" }), 1)).toEqual({ ok: true, op: "put", key: "b", previous: undefined })
    apply(encodeKvCommand({ op: "put", key: "a", value: "1" }), 2)
    expect(apply(encodeKvCommand({ op: "delete", key: "b" }), 3)).toEqual({ ok: true, op: "delete", key: "b", previous: "2" })
    expect(apply(new TextEncoder().encode("{\"op\":\"put\",\"key\":\"x\"}"), 4)).toEqual({ ok: false, error: "put needs a string value" })
    const copy = new KvStateMachine()
    // As a follower installs one: checked as it arrives, then restored from the same bytes.
    const bytes = sm.snapshot()
    expect(copy.validate(bytes)).toBeUndefined()
    copy.restore(bytes)
    expect(copy.get("a")).toBe("1")
    expect(copy.get("b")).toBeUndefined()
    expect(new TextDecoder().decode(copy.snapshot())).toBe(new TextDecoder().decode(sm.snapshot()))
  })

  it("a captured snapshot is the state when captured, in slices that join to the sorted pairs", () => {
    const sm = new KvStateMachine()
    const put = (key: string, value: string, index: number) => sm.apply({ index, term: 1, data: encodeKvCommand({ op: "put", key, value }) })
    const keys = Array.from({ length: 5000 }, (_, i) => `key-${(i * 7919) % 5000}`)
    keys.forEach((key, i) => put(key, `v${i}`, i + 1))
    const expected = JSON.stringify(keys.map((key, i) => [key, `v${i}`]).sort(([a], [b]) => (a! < b! ? -1 : 1)))
    expect(new TextDecoder().decode(sm.snapshot())).toBe(expected)

    const capture = sm.captureSnapshot()
    // What is applied after the capture is not in it.
    put("key-0", "changed", 5001)
    sm.apply({ index: 5002, term: 1, data: encodeKvCommand({ op: "delete", key: "key-1" }) })
    put("zzz", "new", 5003)
    const slices: Array<Uint8Array> = []
    for (let slice = capture.next(); slice !== undefined; slice = capture.next()) slices.push(slice)
    expect(slices.length).toBeGreaterThan(3)
    expect(new TextDecoder().decode(Buffer.concat(slices))).toBe(expected)
    expect(capture.next()).toBeUndefined()

    const copy = new KvStateMachine()
    copy.restore(Buffer.concat(slices))
    expect(copy.get("key-0")).toBe(`v${keys.indexOf("key-0")}`)
    expect(copy.get("zzz")).toBeUndefined()
    expect(new TextDecoder().decode(new KvStateMachine().snapshot())).toBe("[]")
  })

  it("a snapshot in slices is the sorted pairs at every size around a slice's", () => {
    for (const size of [1, 2, 2047, 2048, 2049, 4096, 4097, 6500]) {
      const sm = new KvStateMachine()
      const pairs: Array<[string, string]> = []
      for (let i = 0; i < size; i++) {
        const key = `k${(i * 7919) % size}-${size - i}`
        pairs.push([key, `${i}`])
        sm.apply({ index: i + 1, term: 1, data: encodeKvCommand({ op: "put", key, value: `${i}` }) })
      }
      pairs.sort(([a], [b]) => (a < b ? -1 : 1))
      expect(new TextDecoder().decode(sm.snapshot())).toBe(JSON.stringify(pairs))
    }
  })
})

describe("kv state machine: snapshot validation", () => {
  it("validate accepts what snapshot() makes and the empty state, refuses anything else and changes nothing", () => {
    const sm = new KvStateMachine()
    sm.apply({ index: 1, term: 1, data: encodeKvCommand({ op: "put", key: "k", value: "v" }) })
    expect(sm.validate(sm.snapshot())).toBeUndefined()
    expect(sm.validate(new Uint8Array(0))).toBeUndefined()
    const text = (s: string) => new TextEncoder().encode(s)
    for (const garbage of [text("{ not json"), text("{}"), text("[[\"k\"]]"), text("[[\"k\", 1]]"), text("[[\"k\",\"v\",\"x\"]]"), new Uint8Array([0xff, 0xfe])]) {
      expect(sm.validate(garbage)).toMatch(/^kv snapshot: /)
      expect(() => new KvStateMachine().restore(garbage)).toThrow(/kv snapshot: /)
    }
    expect(sm.get("k")).toBe("v")
  })
})

describe("progress", () => {
  it("a probe rejected below the match (the follower lost its log) probes from the follower's hint", () => {
    const pr = new Progress(2, 27)
    pr.acknowledge(26)
    expect(pr.state).toBe("replicate")
    pr.lost(0)
    expect(pr.next).toBe(27)
    // The follower restarted on an empty log: it rejects the probe at 26 with hint 0.
    expect(pr.rejected(26, 0)).toBe(true)
    expect(pr.match).toBe(0)
    expect(pr.next).toBe(1)
    // A stale rejection (not of the outstanding probe) changes nothing.
    expect(pr.rejected(26, 0)).toBe(false)
  })
})

describe("kv state machine: validate agrees with restore", () => {
  it("on 2,000 seeded inputs (near-snapshots and random bytes), validate refuses exactly what restore throws on", () => {
    const random = prng(12)
    const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(random() * xs.length)]!
    const value = (depth: number): unknown =>
      depth > 2 ? pick(["k", "", 1, null, true]) : pick([
        () => "s" + Math.floor(random() * 100),
        () => Math.floor(random() * 10),
        () => null,
        () => Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1)),
        () => ({ k: value(depth + 1) })
      ])()
    for (let i = 0; i < 2000; i++) {
      let bytes: Uint8Array
      if (i % 2 === 0) {
        bytes = new TextEncoder().encode(JSON.stringify(value(0)))
      } else {
        bytes = Uint8Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256))
      }
      const sm = new KvStateMachine()
      sm.apply({ index: 1, term: 1, data: encodeKvCommand({ op: "put", key: "kept", value: "yes" }) })
      const verdict = sm.validate(bytes)
      expect(sm.get("kept"), `input ${i}`).toBe("yes")
      let threw = false
      try {
        sm.restore(bytes)
      } catch {
        threw = true
      }
      expect(threw, `input ${i}: ${JSON.stringify(Array.from(bytes))} validate=${verdict}`).toBe(verdict !== undefined)
    }
  })
})
