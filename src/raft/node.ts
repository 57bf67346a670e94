/**
 * A Raft node as an actor: one fiber owns the protocol state (`RaftCore`), the storage and the
 * state machine, and takes everything from one mailbox:
 *
 * - inbound messages, pushed by a receiver fiber reading `transport.receiveBatch`;
 * - clock ticks, pushed by a ticker fiber (`Effect.sleep`, so `TestClock` drives it in tests);
 * - client requests (propose, read, status), each with a `Deferred` for the reply.
 *
 * Per batch of inputs it steps the core, then carries out the core's `Ready` in the order
 * Raft requires: persist, send, apply (see `core.ts`). Persisting runs off the loop
 * (`write-pipeline.ts`): the loop keeps going while a write is in flight, messages that promise
 * durability wait for it, and its completion comes back through the mailbox. Requests carry
 * their own deadline and are failed by the ticker-driven check, so no caller waits forever.
 */
import { randomUUID } from "node:crypto"
import { Cause, Clock, Deferred, Effect, Exit, PubSub, Queue, Random, type Scope, Stream } from "effect"
import { EntryType, type Entry, MessageType, messageTypeName, type NodeId, type RaftMessage } from "../message/types.ts"
import type { MessageDropped, PeerUnknown } from "../domain/errors.ts"
import type { RaftTransportService } from "../domain/raft-transport.ts"
import type { RaftConfig } from "./config.ts"
import { type Ready, RaftCore } from "./core.ts"
import { NoQuorum, NotLeader, ProposalDropped, SnapshotUnusable, type StorageError } from "./errors.ts"
import type { RaftEvent, RaftStatus } from "./events.ts"
import { makeInboundGuard } from "./inbound-guard.ts"
import { Membership } from "./membership.ts"
import { contextKey } from "./messages.ts"
import { type PendingProposal, PendingRequests, type ProposeError, type ReadError } from "./pending-requests.ts"

export type { ProposeError, ReadError } from "./pending-requests.ts"
import { encodeCapture, type StateMachine } from "./state-machine.ts"
import type { RaftStorage, SnapshotRecord } from "./storage.ts"
import { WritePipeline } from "./write-pipeline.ts"

/** Per-call options of `propose` and `read`. */
export interface RequestOptions {
  /** Overrides the config's `proposal_timeout_ms` for this call. */
  readonly timeoutMs?: number | undefined
}


/** A running Raft node applying committed entries to a `StateMachine<R>`. */
export interface RaftNode<R> {
  readonly id: NodeId
  /**
   * Replicates `data` and succeeds with the state machine's result once this node applied it.
   * A follower forwards it to the leader. Fails with `NotLeader` when no leader is known,
   * `NoQuorum` when it does not commit in time (config `proposal_timeout_ms`, or
   * `options.timeoutMs`), `ProposalDropped` when it is known to be lost.
   */
  readonly propose: (data: Uint8Array, options?: RequestOptions) => Effect.Effect<R, ProposeError>
  /** Runs `query` against the state machine once a linearizable read index is applied (§6.4). */
  readonly read: <A>(query: () => A, options?: RequestOptions) => Effect.Effect<A, ReadError>
  readonly status: Effect.Effect<RaftStatus>
  /** Leader only: hands leadership to `to` as soon as its log is up to date (thesis §3.10). */
  readonly transferLeadership: (to: NodeId) => Effect.Effect<void, NotLeader>
  /**
   * Role, leader and snapshot events. The node starts working as soon as its layer is built, so
   * a new subscriber first receives the last `EVENT_REPLAY` events (what happened while it was
   * being set up, such as a snapshot installed from messages already waiting), then live ones.
   */
  readonly events: Stream.Stream<RaftEvent>
  /**
   * Completes when the node stops: fails with the `StorageError` (or dies with the defect) that
   * stopped it (the node is fail-stop: the process should exit and restart), succeeds when its
   * scope closes normally.
   */
  readonly done: Effect.Effect<void, StorageError>
}

/** What `makeRaftNode` runs on: its `[raft]` config, a transport, storage and a state machine. */
export interface RaftNodeOptions<R> {
  readonly config: RaftConfig
  readonly transport: RaftTransportService
  readonly storage: RaftStorage
  readonly stateMachine: StateMachine<R>
}

/** How many times a refused forwarded proposal is sent on to the next known leader. */
const MAX_FORWARD_HOPS = 3

type Input<R> =
  | { readonly _tag: "Messages"; readonly messages: ReadonlyArray<RaftMessage> }
  | { readonly _tag: "Tick" }
  | {
    readonly _tag: "Propose"
    readonly data: Uint8Array
    readonly timeoutMs: number
    readonly deferred: Deferred.Deferred<R, ProposeError>
  }
  | {
    readonly _tag: "Read"
    readonly timeoutMs: number
    readonly run: () => void
    readonly fail: (error: ReadError) => void
  }
  | { readonly _tag: "Status"; readonly deferred: Deferred.Deferred<RaftStatus> }
  | { readonly _tag: "Unreachable"; readonly peer: NodeId }
  /** Every link to the peer is down (after a `Disconnected`). */
  | { readonly _tag: "PeerDown"; readonly peer: NodeId }
  | { readonly _tag: "Transfer"; readonly to: NodeId; readonly deferred: Deferred.Deferred<void, NotLeader> }
  | { readonly _tag: "Persisted"; readonly seq: number; readonly exit: Exit.Exit<void, StorageError> }
  | { readonly _tag: "SnapshotReady"; readonly exit: Exit.Exit<SnapshotRecord, StorageError> }

const MAILBOX_CAPACITY = 4096
/** Events a late subscriber still receives (see `RaftNode.events`). */
const EVENT_REPLAY = 64
const RECEIVE_BATCH = 256
/** Committed entries applied between two yields, so a long catch-up does not starve others. */
const APPLY_CHUNK = 512

const encoder = new TextEncoder()

/**
 * The state machine from the stored snapshot. One that does not restore stops the start with
 * `SnapshotUnusable` naming the file: starting again cannot help, an operator must (docs/node.md).
 */
const restoreStored = <R>(stateMachine: StateMachine<R>, snapshot: SnapshotRecord | undefined, storage: RaftStorage) =>
  Effect.try({
    try: () => stateMachine.restore(snapshot?.data ?? new Uint8Array(0)),
    catch: (cause) =>
      new SnapshotUnusable({
        path: storage.snapshotLocation ?? "(in memory)",
        index: snapshot?.metadata.index ?? 0,
        term: snapshot?.metadata.term ?? 0,
        reason: cause instanceof Error ? cause.message : String(cause)
      })
  })

/**
 * Starts a Raft node in the caller's scope: it restores `stateMachine` from storage, then
 * elects, replicates and applies until the scope closes (or a storage failure stops it:
 * see `done`). Use it with your own `StateMachine`; `RaftManager` is this with the key-value
 * state machine.
 *
 * @example
 * ```ts
 * const node = yield* makeRaftNode({ config, transport, storage: makeMemoryStorage(), stateMachine: new Counter() })
 * const total = yield* node.propose(new Uint8Array([0, 0, 0, 5]))
 * ```
 */
export const makeRaftNode = <R>(
  options: RaftNodeOptions<R>
): Effect.Effect<RaftNode<R>, StorageError | SnapshotUnusable, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, transport, storage, stateMachine } = options
    const id = transport.nodeId
    const membership = new Membership(config.voters)
    const random = yield* Random.Random
    // Request ids must never repeat, not even across restarts: a restarted node re-applies old
    // entries (with their ids) while it already accepts new proposals.
    const incarnation = randomUUID()
    let requestSeq = 0

    const persisted = yield* storage.load
    // Start from the stored snapshot (or from empty): committed entries after it are re-applied.
    yield* restoreStored(stateMachine, persisted.snapshot, storage)
    const core = new RaftCore({
      id,
      membership,
      electionTimeoutMinMs: config.election_timeout_min_ms,
      electionTimeoutMaxMs: config.election_timeout_max_ms,
      heartbeatIntervalMs: config.heartbeat_interval_ms,
      maxInflightAppends: config.max_inflight_appends,
      maxEntriesPerAppend: config.max_entries_per_append,
      maxAppendBytes: config.max_append_bytes,
      preVote: config.pre_vote,
      snapshotTimeoutMs: config.snapshot_timeout_ms,
      random: () => random.nextDoubleUnsafe()
    }, persisted, yield* Clock.currentTimeMillis)

    const mailbox = yield* Queue.bounded<Input<R>>(MAILBOX_CAPACITY)
    const nodeScope = yield* Effect.scope
    const writes = new WritePipeline({
      storage,
      scope: nodeScope,
      hardState: persisted.hardState,
      // Unbounded in effect: at most one write is in flight, so at most one completion waits.
      notify: (seq, exit) => Effect.asVoid(Queue.offer(mailbox, { _tag: "Persisted", seq, exit })),
      onDurable: (index, term) => core.persistedTo(index, term)
    })
    const events = yield* PubSub.sliding<RaftEvent>({ capacity: 1024, replay: EVENT_REPLAY })
    const pending = new PendingRequests<R>()
    const { proposals, proposalAt, reads } = pending

    /** A fresh request id: the bytes that travel in a context, and the key it is tracked by. */
    const newRequest = () => {
      const context = encoder.encode(`${id}:${incarnation}:${++requestSeq}`)
      return { context, key: contextKey(context) }
    }

    const noQuorum = (operation: "propose" | "read", timeoutMs: number, now: number, detail?: string) =>
      new NoQuorum({
        node: id,
        term: core.term,
        operation,
        timeoutMs,
        reachable: core.reachableVoters(now),
        voters: membership.voters.length,
        ...(detail !== undefined ? { detail } : {})
      })

    const settleProposal = (key: string, exit: Exit.Exit<R, ProposeError>) => pending.settleProposal(key, exit)
    const failProposal = (key: string, error: ProposeError) => pending.failProposal(key, error)
    const failRead = (key: string, error: ReadError) => pending.failRead(key, error)
    const failAll = (reason: string) =>
      pending.failAll(
        () => new ProposalDropped({ node: id, term: core.term, reason }),
        () => new NotLeader({ node: id, term: core.term, leader: undefined })
      )
    const expire = (now: number) => pending.expire(now, (operation, timeoutMs) => noQuorum(operation, timeoutMs, now))

    /** Appends (as leader) or forwards a proposal and records it as pending; fails it at once otherwise. */
    const propose = (
      key: string,
      request: Pick<PendingProposal<R>, "deferred" | "deadline" | "timeoutMs">,
      data: Uint8Array,
      context: Uint8Array,
      hops: number,
      now: number
    ): void => {
      const outcome = core.propose(data, context, now)
      switch (outcome._tag) {
        case "Appended":
          pending.addProposal(key, { ...request, index: outcome.index })
          return
        case "Forwarded":
          pending.addProposal(key, { ...request, index: undefined, forwarded: { to: outcome.leader, data, context, hops } })
          return
        case "NotLeader":
          Deferred.doneUnsafe(request.deferred, Exit.fail(new NotLeader({ node: id, term: core.term, leader: undefined })))
          return
        case "Rejected":
          Deferred.doneUnsafe(request.deferred, Exit.fail(new ProposalDropped({ node: id, term: core.term, reason: outcome.reason })))
          return
      }
    }

    /**
     * The node a proposal was forwarded to refused it (it is no longer the leader): nothing was
     * appended, so it is safe to send it on to the leader this node now knows, a few times at
     * most; with no other leader known it fails with NotLeader at once rather than time out.
     */
    const proposalRefused = (key: string, from: NodeId, now: number): void => {
      const p = proposals.get(key)
      if (p?.forwarded === undefined || p.forwarded.to !== from) return // a stale refusal
      const leader = core.leader
      if (leader === undefined || leader === from || p.forwarded.hops >= MAX_FORWARD_HOPS) {
        failProposal(key, new NotLeader({ node: id, term: core.term, leader: leader === from ? undefined : leader }))
        return
      }
      // A fresh entry: the old one's `forwarded` must not outlive this attempt (a second refusal
      // from the same node would otherwise send it on again).
      proposals.delete(key)
      const { deferred, deadline, timeoutMs } = p
      propose(key, { deferred, deadline, timeoutMs }, p.forwarded.data, p.forwarded.context, p.forwarded.hops + 1, now)
    }

    const handle = (input: Input<R>, now: number): void => {
      switch (input._tag) {
        case "Messages":
          for (const m of input.messages) core.step(m, now)
          return
        case "Tick":
          core.tick(now)
          expire(now)
          return
        case "Propose": {
          const { context, key } = newRequest()
          propose(key, { deferred: input.deferred, deadline: now + input.timeoutMs, timeoutMs: input.timeoutMs }, input.data, context, 0, now)
          return
        }
        case "Read": {
          const { context, key } = newRequest()
          const outcome = core.readIndex(context, now)
          if (outcome._tag === "NotLeader") {
            input.fail(new NotLeader({ node: id, term: core.term, leader: outcome.leader }))
            return
          }
          reads.set(key, {
            deadline: now + input.timeoutMs,
            timeoutMs: input.timeoutMs,
            context,
            askedOf: core.role === "leader" ? id : core.leader,
            index: undefined,
            run: input.run,
            fail: input.fail
          })
          return
        }
        case "Status":
          Deferred.doneUnsafe(input.deferred, Exit.succeed(core.status()))
          return
        case "Unreachable":
          core.reportUnreachable(input.peer, now)
          return
        case "Persisted":
        case "SnapshotReady":
        case "PeerDown":
          return // taken by the loop (it may fail it, or set a timer), never handled here
        case "Transfer": {
          const outcome = core.transferLeadership(input.to, now)
          Deferred.doneUnsafe(
            input.deferred,
            outcome._tag === "NotLeader"
              ? Exit.fail(new NotLeader({ node: id, term: core.term, leader: outcome.leader }))
              : Exit.void
          )
          return
        }
      }
    }

    /**
     * §6.4 through a follower: a read waits for the read index of the leader it was sent to, and
     * that answer never comes if the leader crashed or the message was lost. Once another leader
     * is known, ask it too, with the same request id: whichever answer arrives first serves the
     * read, as each is a commit index some leader confirmed after the read was asked. Reads this
     * node took as leader are failed by the core when it steps down (the caller retries).
     */
    let reaskedFor: NodeId | undefined
    const reaskReads = (now: number): void => {
      const leader = core.leader
      // Only a leader that is new since the last look changes anything (reads taken while no
      // leader was known count as asked of nobody); most batches see the same one.
      if (leader === reaskedFor) return
      reaskedFor = leader
      if (leader === undefined) return
      for (const r of reads.values()) {
        if (r.index !== undefined || r.askedOf === id || r.askedOf === leader) continue
        r.askedOf = leader
        core.readIndex(r.context, now)
      }
    }

    const onDropped = (m: RaftMessage, error: MessageDropped | PeerUnknown, now: number) =>
      Effect.suspend(() => {
        core.reportDropped(m)
        // A refusal we sent back is a Propose too, but no proposal of ours.
        if (m.msgType === MessageType.Propose && m.reject !== true) {
          failProposal(
            contextKey(m.entries?.[0]?.context),
            new ProposalDropped({ node: id, term: core.term, reason: `could not forward to leader ${m.to}: ${error.message}` })
          )
        } else if (m.msgType === MessageType.ReadIndex) {
          const key = contextKey(m.context)
          const r = reads.get(key)
          if (r !== undefined) failRead(key, noQuorum("read", r.timeoutMs, now, `could not reach leader ${m.to}: ${error.message}`))
        }
        return Effect.logDebug(`raft message ${messageTypeName(m.msgType)} to ${m.to} lost: ${error.message}`)
      })

    /** Payload bytes of the entries applied since the last snapshot (taken or installed). */
    let appliedBytes = 0

    const applyEntry = (entry: Entry): void => {
      // Most entries on most nodes were proposed elsewhere: with nothing pending here, skip
      // encoding the key (`proposalAt` only holds indexes of pending proposals).
      const key = proposals.size === 0 ? undefined : contextKey(entry.context)
      const mine = proposalAt.get(entry.index)
      if (mine !== undefined && mine !== key) {
        // Our entry at this index was replaced by another leader's (§5.3): it will never apply.
        failProposal(mine, new ProposalDropped({ node: id, term: core.term, reason: `entry ${entry.index} was overwritten by a later leader` }))
      }
      appliedBytes += (entry.data?.length ?? 0) + (entry.context?.length ?? 0)
      if (entry.entryType === EntryType.ConfChange) return // static membership: seam for §6
      if (entry.data === undefined || entry.data.length === 0) return // a leader's no-op (§8)
      const result = stateMachine.apply(entry)
      if (key !== undefined) settleProposal(key, Exit.succeed(result))
    }

    /** Applies committed entries in log order (§5.3: "apply log[lastApplied] to state machine"). */
    const applyCommitted: Effect.Effect<void> = Effect.suspend(() => {
      const log = core.log
      // Only what is on this node's disk too: a follower may learn an entry is committed
      // before its own write of it completes.
      const applicable = Math.min(log.committed, log.durable)
      if (log.applied >= applicable) return Effect.void
      const upTo = Math.min(applicable, log.applied + APPLY_CHUNK)
      for (let i = log.applied + 1; i <= upTo; i++) applyEntry(log.entry(i)!)
      core.appliedTo(upTo)
      return upTo < applicable ? Effect.andThen(Effect.yieldNow, applyCommitted) : Effect.void
    })

    const serveReads = () => {
      for (const [key, r] of reads) {
        if (r.index !== undefined && r.index <= core.log.applied) {
          reads.delete(key)
          r.run()
        }
      }
    }

    /** A snapshot is being encoded or staged off the loop (`startSnapshot`). */
    let snapshotting = false

    /**
     * §7: snapshot the state machine and compact the log every `snapshot_threshold` entries, or
     * sooner once they hold `snapshot_threshold_bytes`. The state is captured here, then
     * encoded a slice at a time and written beside the current snapshot by a fiber of its own,
     * while the loop goes on; `finishSnapshot` makes it current once it is durable.
     */
    const startSnapshot = Effect.suspend(() => {
      const log = core.log
      const due = log.applied - log.snapshotIndex >= config.snapshot_threshold ||
        appliedBytes >= config.snapshot_threshold_bytes
      if (!due || snapshotting) return Effect.void
      snapshotting = true
      appliedBytes = 0
      const metadata = { index: log.applied, term: log.term(log.applied)!, confState: membership.confState() }
      const capture = stateMachine.captureSnapshot?.() ?? stateMachine.snapshot()
      const encodeAndStage = Effect.gen(function*() {
        const data = capture instanceof Uint8Array ? capture : yield* encodeCapture(capture)
        const record: SnapshotRecord = { metadata, data }
        if (storage.stageSnapshot !== undefined) yield* storage.stageSnapshot(record)
        return record
      })
      return Effect.asVoid(Effect.forkIn(
        Effect.flatMap(Effect.exit(encodeAndStage), (exit) => Queue.offer(mailbox, { _tag: "SnapshotReady", exit })),
        nodeScope
      ))
    })

    /**
     * The loop's half of a snapshot: compacts the log to it, unless a snapshot installed from
     * the leader meanwhile is newer. Compaction rewrites the log file, so the writes in flight
     * finish first; the messages they held go out.
     */
    const finishSnapshot = (exit: Exit.Exit<SnapshotRecord, StorageError>, now: number) =>
      Effect.gen(function*() {
        snapshotting = false
        if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
        const record = exit.value
        const log = core.log
        if (record.metadata.index <= log.snapshotIndex) {
          return yield* Effect.logDebug(`snapshot ${record.metadata.index} dropped: the log is compacted to ${log.snapshotIndex} already`)
        }
        yield* sendAll(yield* writes.drain, now)
        yield* writes.writeNow(
          { snapshot: record, hardState: { term: core.term, vote: core.vote, commit: log.committed } },
          log.lastIndex(),
          log.lastTerm()
        )
        core.snapshotTaken(record)
        const taken: RaftEvent = { _tag: "SnapshotTaken", node: id, index: record.metadata.index, term: record.metadata.term, bytes: record.data.length }
        yield* Effect.logDebug(describeEvent(taken))
        yield* PubSub.publish(events, taken)
      })

    /** The transport never blocks; a refused message is a lost message. */
    const sendAll = Effect.fnUntraced(function*(messages: ReadonlyArray<RaftMessage>, now: number) {
      for (const m of messages) {
        yield* transport.send(m.to, m).pipe(Effect.catch((error) => onDropped(m, error, now)))
      }
    })

    // A generator function made once, not an `Effect.gen` closure per round: a generator
    // closure per call kept what it captured alive across scavenges in the benchmarks
    // (docs/design.md, "No generator closure per batch"); here that would be each round's `Ready`.
    const carryOut = Effect.fnUntraced(function*(rd: Ready, now: number, released: ReadonlyArray<RaftMessage>) {
      for (const note of rd.notes) yield* Effect.logDebug(note)
      // Messages whose write completed since the last round (Persisted inputs) go first.
      yield* sendAll(released, now)
      // 1-2. Persist before anything depends on it (votes, acknowledgements, applying), and send
      // what does not wait for it. A leader's snapshot replaces the log: written in line.
      const log = core.log
      if (rd.snapshot !== undefined) {
        yield* sendAll(yield* writes.drain, now)
        yield* writes.writeNow({
          snapshot: { metadata: rd.snapshot.metadata, data: rd.snapshot.data },
          ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
          ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {})
        }, log.lastIndex(), log.lastTerm())
        yield* sendAll(rd.messages, now)
      } else {
        const lastIndex = log.lastIndex()
        const staged = { entries: rd.entries, hardState: rd.hardState, messages: rd.messages, lastIndex, lastTerm: log.lastTerm() }
        const sendNow = yield* writes.stage(staged)
        yield* sendAll(sendNow, now)
        yield* writes.kick(sendNow.length > 0)
      }
      const published: Array<RaftEvent> = [...rd.events]
      // 3. Install a leader's snapshot, then apply what is committed.
      if (rd.snapshot !== undefined) {
        stateMachine.restore(rd.snapshot.data)
        appliedBytes = 0
        const { index, term } = rd.snapshot.metadata
        published.push({ _tag: "SnapshotInstalled", node: id, index, term, from: rd.snapshot.from, bytes: rd.snapshot.data.length })
        yield* Effect.logInfo(`installed snapshot ${index} (term ${term}) from node ${rd.snapshot.from}`)
      }
      for (const s of rd.readStates) {
        const r = reads.get(s.key)
        if (r !== undefined && r.index === undefined) r.index = s.index
      }
      for (const r of rd.proposalRefusals) proposalRefused(r.key, r.from, now)
      for (const f of rd.readFailures) {
        // A refusal from a former leader while the read waits on the new one is not final.
        if (reads.get(f.key)?.askedOf !== f.from) continue
        failRead(f.key, new NotLeader({ node: id, term: core.term, leader: f.leader }))
      }
      yield* applyCommitted
      serveReads()
      yield* startSnapshot
      for (const e of published) {
        // Who leads is what an operator looks for first: role and leader changes at INFO.
        if (e._tag === "LeaderChanged" || e._tag === "RoleChanged") yield* Effect.logInfo(describeEvent(e))
      }
      if (published.length > 0) yield* PubSub.publishAll(events, published)
    })

    /**
     * Every link to `peer` is down: if it is this follower's leader, the core moves the election
     * deadline closer (`RaftCore.leaderUnreachable`), and a timer of its own wakes the loop then:
     * the ticker may be asleep until a later time.
     */
    const leaderDown = (peer: NodeId, now: number) =>
      Effect.suspend(() => {
        const at = core.leaderUnreachable(peer, now)
        if (at === undefined) return Effect.void
        return Effect.asVoid(Effect.forkIn(Effect.andThen(Effect.sleep(at - now), Queue.offer(mailbox, { _tag: "Tick" })), nodeScope))
      })

    const loop = Effect.gen(function*() {
      while (true) {
        const inputs = yield* Queue.takeAll(mailbox)
        const now = yield* Clock.currentTimeMillis
        let released: ReadonlyArray<RaftMessage> = []
        let snapshot: Exit.Exit<SnapshotRecord, StorageError> | undefined
        for (const input of inputs) {
          if (input._tag === "Persisted") released = [...released, ...(yield* writes.completed(input.seq, input.exit))]
          else if (input._tag === "SnapshotReady") snapshot = input.exit
          else if (input._tag === "PeerDown") yield* leaderDown(input.peer, now)
          else handle(input, now)
        }
        if (snapshot !== undefined) yield* finishSnapshot(snapshot, now)
        reaskReads(now)
        yield* carryOut(core.ready(), now, released)
      }
    })

    // Messages from non-voters and snapshots the state machine cannot restore stop here.
    const admit = makeInboundGuard(membership, (data) => stateMachine.validate(data))
    // Both feeders end once the mailbox is shut down (the node stopped).
    const receiver = Effect.gen(function*() {
      while (true) {
        const messages = yield* admit(yield* transport.receiveBatch(RECEIVE_BATCH))
        if (messages.length === 0) continue
        if (!(yield* Queue.offer(mailbox, { _tag: "Messages", messages }))) return
      }
    })

    // The transport knows when a link went down or a snapshot transfer gave up.
    const linkWatcher = Stream.runForEach(transport.events, (event) => {
      if (event._tag === "SnapshotFailed") return Effect.asVoid(Queue.offer(mailbox, { _tag: "Unreachable", peer: event.peer }))
      if (event._tag !== "Disconnected") return Effect.void
      return Effect.andThen(
        Queue.offer(mailbox, { _tag: "Unreachable", peer: event.peer }),
        transport.peerStatus(event.peer).pipe(
          Effect.flatMap((status) => {
            // The link that went down may still read as connected until its connector catches up.
            const down = status.links.every((link) => link.transport === event.transport || link.state !== "connected")
            return down ? Effect.asVoid(Queue.offer(mailbox, { _tag: "PeerDown", peer: event.peer })) : Effect.void
          }),
          // Removed meanwhile: no longer a peer whose links count.
          Effect.catchTag("PeerUnknown", () => Effect.void)
        )
      )
    })

    const tickMs = Math.max(1, Math.min(Math.floor(config.heartbeat_interval_ms / 2), Math.floor(config.election_timeout_min_ms / 10)))
    /**
     * A follower with no request waiting has one timer, its election deadline, which every
     * heartbeat pushes back: it sleeps until then, at most half the shortest election timeout
     * (so a role taken meanwhile, which no deadline announces, is ticked within that), instead
     * of waking every `tickMs` for nothing. Two of three nodes of an idle cluster then wake
     * about 7 times a second instead of 33.
     */
    const idleTickMaxMs = Math.max(tickMs, Math.floor(config.election_timeout_min_ms / 2))
    const nextTickIn = (now: number): number => {
      const timer = core.nextTimerAt()
      if (timer === undefined || proposals.size > 0 || reads.size > 0) return tickMs
      return Math.max(1, Math.min(idleTickMaxMs, timer - now))
    }
    const ticker = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(nextTickIn(yield* Clock.currentTimeMillis))
        if (!(yield* Queue.offer(mailbox, { _tag: "Tick" }))) return
      }
    })

    const done = yield* Deferred.make<void, StorageError>()
    const stopped = (exit: Exit.Exit<never, StorageError>) =>
      Effect.gen(function*() {
        yield* Queue.shutdown(mailbox)
        failAll("node stopped")
        if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
          yield* Effect.logError("raft node stopped", exit.cause)
          yield* Deferred.done(done, exit)
        } else {
          yield* Deferred.succeed(done, undefined)
        }
      })

    yield* Effect.forkScoped(loop.pipe(Effect.onExit(stopped)), { startImmediately: true })
    yield* Effect.forkScoped(receiver, { startImmediately: true })
    yield* Effect.forkScoped(ticker, { startImmediately: true })
    yield* Effect.forkScoped(linkWatcher, { startImmediately: true })
    yield* Effect.addFinalizer(() => Effect.sync(() => failAll("node stopped")))
    yield* Effect.logInfo(`raft node ${id} started: term ${core.term}, last index ${core.log.lastIndex()}, voters ${membership.voters.join(",")}`)

    /** Hands an input to the actor; false when the node has stopped. */
    const tell = (input: Input<R>) => Queue.offer(mailbox, input)

    const node: RaftNode<R> = {
      id,
      // Generator functions made once, not a generator closure per request (docs/design.md,
      // "No generator closure per batch").
      propose: Effect.fnUntraced(function*(data: Uint8Array, opts?: RequestOptions) {
        const deferred = yield* Deferred.make<R, ProposeError>()
        const accepted = yield* tell({ _tag: "Propose", data, timeoutMs: opts?.timeoutMs ?? config.proposal_timeout_ms, deferred })
        if (!accepted) return yield* new ProposalDropped({ node: id, term: core.term, reason: "node stopped" })
        return yield* Deferred.await(deferred)
      }),
      read: Effect.fnUntraced(function*<A>(query: () => A, opts?: RequestOptions) {
        const deferred = yield* Deferred.make<A, ReadError>()
        const accepted = yield* tell({
          _tag: "Read",
          timeoutMs: opts?.timeoutMs ?? config.proposal_timeout_ms,
          run: () => Deferred.doneUnsafe(deferred, runQuery(query)),
          fail: (error) => Deferred.doneUnsafe(deferred, Exit.fail(error))
        })
        if (!accepted) return yield* new NotLeader({ node: id, term: core.term, leader: undefined })
        return yield* Deferred.await(deferred)
      }),
      status: Effect.gen(function*() {
        const deferred = yield* Deferred.make<RaftStatus>()
        const accepted = yield* tell({ _tag: "Status", deferred })
        return accepted ? yield* Deferred.await(deferred) : core.status()
      }),
      transferLeadership: (to) =>
        Effect.gen(function*() {
          const deferred = yield* Deferred.make<void, NotLeader>()
          const accepted = yield* tell({ _tag: "Transfer", to, deferred })
          if (!accepted) return yield* new NotLeader({ node: id, term: core.term, leader: undefined })
          return yield* Deferred.await(deferred)
        }),
      events: Stream.fromPubSub(events),
      done: Deferred.await(done)
    }
    return node
  }).pipe(Effect.annotateLogs({ raft_node: String(options.transport.nodeId) }))

/** A query that throws is a bug in the caller's code: a defect, not a Raft error. */
const runQuery = <A>(query: () => A): Exit.Exit<A, never> => {
  try {
    return Exit.succeed(query())
  } catch (defect) {
    return Exit.die(defect)
  }
}

const describeEvent = (e: RaftEvent): string => {
  switch (e._tag) {
    case "RoleChanged":
      return `role ${e.role} (term ${e.term})`
    case "LeaderChanged":
      return `leader ${e.leader ?? "unknown"} (term ${e.term})`
    case "SnapshotTaken":
      return `snapshot taken at ${e.index} (term ${e.term}, ${e.bytes} bytes)`
    case "SnapshotInstalled":
      return `snapshot installed at ${e.index} from ${e.from}`
  }
}
