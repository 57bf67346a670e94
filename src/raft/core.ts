/**
 * The Raft protocol as a plain, synchronous state machine (no Effect, no I/O), in the style of
 * etcd/raft's `raft.go`: feed it messages (`step`), clock ticks (`tick`) and client requests
 * (`propose`, `readIndex`), then take its `ready()` output and carry it out in order:
 *
 *   1. persist the hard state, the new entries and any installed snapshot;
 *   2. only then send the messages that promise persisted state (votes, acknowledgements);
 *      a leader's appends may go out while its own write is in flight;
 *   3. apply newly committed entries that are durable here, answer reads;
 *
 * and report each completed write with `persistedTo`: a leader counts itself in a quorum only
 * for entries on its disk.
 *
 * Section references are to the extended Raft paper (Ongaro & Ousterhout) and, where marked,
 * to Ongaro's thesis.
 */
import { type Entry, MessageType, type NodeId, type RaftMessage } from "../message/types.ts"
import type { RaftEvent, RaftStatus, Role } from "./events.ts"
import { RaftLog } from "./log.ts"
import type { Membership } from "./membership.ts"
import { contextKey, nonEmptyBytes, TRANSFER_CONTEXT, TRANSFER_KEY } from "./messages.ts"
import { Progress } from "./progress.ts"
import { type IndexedRead, type ReadAsk, ReadIndexQueue } from "./read-index.ts"
import { normalizeEntry, snapshotRecordOf } from "./records.ts"
import type { HardState, PersistedState, SnapshotRecord } from "./storage.ts"

/** What `RaftCore` is built with. */
export interface CoreConfig {
  readonly id: NodeId
  readonly membership: Membership
  readonly electionTimeoutMinMs: number
  readonly electionTimeoutMaxMs: number
  readonly heartbeatIntervalMs: number
  readonly maxInflightAppends: number
  readonly maxEntriesPerAppend: number
  readonly maxAppendBytes: number
  readonly preVote: boolean
  readonly snapshotTimeoutMs: number
  /** Uniform in [0, 1): randomises election timeouts (§5.2). */
  readonly random: () => number
}

/** A read whose index is known: answer it once `applied >= index`. */
export interface ReadState {
  readonly key: string
  readonly index: number
}

/** A read the leader could not serve (it is no longer the leader). */
export interface ReadFailure {
  readonly key: string
  readonly leader: NodeId | undefined
  /** The node that refused it: this one for a local read, else the follower's former leader. */
  readonly from: NodeId
}

/** A proposal this node forwarded that the receiver refused: it was not appended there. */
export interface ProposalRefusal {
  readonly key: string
  /** The node that refused it (no longer the leader, or transferring leadership). */
  readonly from: NodeId
}

/** What the driver must do after a batch of inputs, in this order (see the module comment). */
export interface Ready {
  readonly hardState: HardState | undefined
  readonly entries: ReadonlyArray<Entry>
  /** A leader's snapshot this node installed: persist it, then restore the state machine. */
  readonly snapshot: (SnapshotRecord & { readonly from: NodeId }) | undefined
  readonly messages: ReadonlyArray<RaftMessage>
  readonly readStates: ReadonlyArray<ReadState>
  readonly readFailures: ReadonlyArray<ReadFailure>
  readonly proposalRefusals: ReadonlyArray<ProposalRefusal>
  readonly events: ReadonlyArray<RaftEvent>
  readonly notes: ReadonlyArray<string>
}

export type ProposeOutcome =
  | { readonly _tag: "Appended"; readonly index: number; readonly term: number }
  | { readonly _tag: "Forwarded"; readonly leader: NodeId }
  | { readonly _tag: "NotLeader"; readonly leader: NodeId | undefined }
  | { readonly _tag: "Rejected"; readonly reason: string }

export type ReadOutcome =
  | { readonly _tag: "Pending" }
  | { readonly _tag: "NotLeader"; readonly leader: NodeId | undefined }

const NONE = 0

/** Message types answered with a term of their own (the candidate's), never bumping ours. */
const isVoteRequest = (t: number) => t === MessageType.RequestVote || t === MessageType.RequestPreVote
const fromLeader = (t: number) => t === MessageType.Append || t === MessageType.Heartbeat || t === MessageType.Snapshot

/** The Raft protocol as a synchronous state machine: inputs in (`step`, `tick`, `propose`), a `Ready` of effects to carry out. */
export class RaftCore {
  readonly id: NodeId
  term: number
  /** Vote cast in `term`; NONE when none. */
  vote: NodeId
  role: Role = "follower"
  leader: NodeId | undefined = undefined
  readonly log: RaftLog

  /** Latest snapshot (ours or installed): what a lagging follower gets (§7). */
  private snapshot: SnapshotRecord | undefined
  private progress = new Map<NodeId, Progress>()
  private votes = new Map<NodeId, boolean>()
  private readonly reads = new ReadIndexQueue()
  /** Reads that arrived before this leader committed an entry of its term (§6.4 step 1). */
  private readsBeforeCommit: Array<ReadAsk> = []
  private transferee: NodeId | undefined = undefined
  private transferDeadline = 0

  private now: number
  private electionDeadline = 0
  private heartbeatDueAt = 0
  private checkQuorumDueAt = 0
  /** Last time we heard from a current leader (or, as leader, confirmed a quorum). */
  private lastLeaderContact = Number.NEGATIVE_INFINITY
  private readonly lastHeard = new Map<NodeId, number>()

  // Output accumulated until the next ready().
  private persisted: HardState
  private messages: Array<RaftMessage> = []
  private readStates: Array<ReadState> = []
  private readFailures: Array<ReadFailure> = []
  private proposalRefusals: Array<ProposalRefusal> = []
  private events: Array<RaftEvent> = []
  private notes: Array<string> = []
  private installed: (SnapshotRecord & { readonly from: NodeId }) | undefined = undefined
  private broadcastEntries = false
  private broadcastCommit = false
  private heartbeatForReads = false

  constructor(private readonly config: CoreConfig, state: PersistedState, now: number) {
    this.id = config.id
    this.now = now
    this.term = state.hardState.term
    this.vote = state.hardState.vote
    this.snapshot = state.snapshot
    const snap = state.snapshot?.metadata
    this.log = new RaftLog(snap?.index ?? 0, snap?.term ?? 0, state.entries, state.hardState.commit)
    this.persisted = state.hardState
    this.resetElectionTimer()
  }

  // ---------------------------------------------------------------------------
  // Inputs
  // ---------------------------------------------------------------------------

  /**
   * When `tick` next has something to do, for a node that is not the leader: its election
   * deadline is its only timer. Undefined for a leader, whose timers are many (heartbeat,
   * check quorum, stalled appends, transfer).
   */
  nextTimerAt(): number | undefined {
    return this.role === "leader" ? undefined : this.electionDeadline
  }

  tick(now: number): void {
    this.now = now
    if (this.role === "leader") {
      if (now >= this.heartbeatDueAt) {
        this.heartbeatDueAt = now + this.config.heartbeatIntervalMs
        this.broadcastHeartbeat(this.reads.lastContext())
      }
      this.announceCommit(true)
      if (now >= this.checkQuorumDueAt) {
        this.checkQuorumDueAt = now + this.config.electionTimeoutMinMs
        if (!this.checkQuorum()) return
      }
      for (const pr of this.progress.values()) {
        if (pr.checkStalled(now, this.config.electionTimeoutMinMs, this.config.snapshotTimeoutMs)) {
          this.note(`replication to ${pr.id} stalled; probing from ${pr.next}`)
          this.sendAppends(pr.id, true)
        }
      }
      if (this.transferee !== undefined && now >= this.transferDeadline) {
        this.note(`leadership transfer to ${this.transferee} timed out`)
        this.transferee = undefined
      }
    } else if (now >= this.electionDeadline && this.config.membership.isVoter(this.id)) {
      // §5.2: no word from a leader (or candidate we voted for) within the election timeout.
      this.campaign(this.config.preVote ? "pre-vote" : "election")
    }
  }

  step(m: RaftMessage, now: number): void {
    this.now = now
    if (m.to !== this.id) return
    this.lastHeard.set(m.from, now)
    const type = m.msgType
    const mTerm = m.term ?? 0

    // Forwarded client requests are not part of the term protocol (etcd's "local" messages).
    if (type === MessageType.Propose) {
      if (m.reject === true) {
        this.proposalRefusals.push({ key: contextKey(m.context), from: m.from })
        return
      }
      return this.handleForwardedProposal(m)
    }
    if (type === MessageType.ReadIndex) return this.handleForwardedRead(m)
    // Valid whatever our term: that leader confirmed its leadership after the read arrived.
    if (type === MessageType.ReadIndexResponse) return this.handleReadIndexResponse(m)

    if (mTerm > this.term) {
      if (isVoteRequest(type) && this.inLease() && contextKey(m.context) !== TRANSFER_KEY) {
        // Thesis §4.2.3 / §9.6: a server that heard from a current leader within the minimum
        // election timeout neither grants the (pre-)vote nor adopts the term, so a node that
        // was partitioned away cannot depose a healthy leader when it comes back.
        this.note(`ignored ${type === MessageType.RequestVote ? "vote" : "pre-vote"} from ${m.from} (term ${mTerm}): leader lease`)
        return
      }
      if (type === MessageType.RequestPreVote) {
        // §9.6: a pre-vote carries the term the candidate *would* use; it changes nothing here.
      } else if (type === MessageType.RequestPreVoteResponse && m.reject !== true) {
        // A granted pre-vote echoes the proposed term; it is not a newer term.
      } else {
        // §5.1: a newer term always wins; a leader or candidate steps down.
        this.becomeFollower(mTerm, fromLeader(type) ? m.from : undefined)
      }
    } else if (mTerm < this.term) {
      if (fromLeader(type)) {
        // §5.1: reject a stale leader with our term so it steps down. With pre-vote and the
        // leader lease a partitioned node may never learn the new term from votes alone.
        this.send({ msgType: MessageType.AppendResponse, to: m.from, term: this.term, reject: true })
      } else if (type === MessageType.RequestPreVote) {
        this.send({ msgType: MessageType.RequestPreVoteResponse, to: m.from, term: this.term, reject: true })
      } else if (type === MessageType.RequestVote) {
        this.send({ msgType: MessageType.RequestVoteResponse, to: m.from, term: this.term, reject: true })
      }
      return
    }

    switch (type) {
      case MessageType.RequestVote:
      case MessageType.RequestPreVote:
        return this.handleVoteRequest(m)
      case MessageType.RequestVoteResponse:
      case MessageType.RequestPreVoteResponse:
        return this.handleVoteResponse(m)
      case MessageType.Append:
      case MessageType.Heartbeat:
      case MessageType.Snapshot:
        if (this.role === "leader") {
          this.note(`BUG: message ${type} from ${m.from} claims leadership of our term ${this.term}`)
          return
        }
        if (this.role !== "follower") this.becomeFollower(this.term, m.from)
        else this.setLeader(m.from)
        this.lastLeaderContact = now
        this.resetElectionTimer()
        if (type === MessageType.Append) return this.handleAppend(m)
        if (type === MessageType.Heartbeat) return this.handleHeartbeat(m)
        return this.handleSnapshot(m)
      case MessageType.AppendResponse:
        return this.handleAppendResponse(m)
      case MessageType.HeartbeatResponse:
        return this.handleHeartbeatResponse(m)
      case MessageType.TimeoutNow:
        // Thesis §3.10: the leader asks us to start an election at once (leadership transfer).
        if (this.role !== "leader" && this.config.membership.isVoter(this.id)) this.campaign("election", true)
        return
    }
  }

  /** A client proposal on this node. */
  propose(data: Uint8Array, context: Uint8Array, now: number): ProposeOutcome {
    this.now = now
    if (this.role === "leader") {
      if (this.transferee !== undefined) return { _tag: "Rejected", reason: `leadership transfer to ${this.transferee} in progress` }
      const index = this.log.lastIndex() + 1
      this.log.append([{ term: this.term, index, data, context }])
      this.broadcastEntries = true
      return { _tag: "Appended", index, term: this.term }
    }
    if (this.leader === undefined) return { _tag: "NotLeader", leader: undefined }
    // Forwarded with term 0: it is a client request, not a protocol message. The request id
    // travels in the entry's context, where the leader keeps it.
    this.send({
      msgType: MessageType.Propose,
      to: this.leader,
      term: 0,
      entries: [{ term: 0, index: 0, data, context }]
    })
    return { _tag: "Forwarded", leader: this.leader }
  }

  /** A linearizable read on this node (§6.4): its index comes back as a `ReadState`. */
  readIndex(context: Uint8Array, now: number): ReadOutcome {
    this.now = now
    if (this.role === "leader") {
      this.leaderReadIndex({ key: contextKey(context), context, from: this.id })
      return { _tag: "Pending" }
    }
    if (this.leader === undefined) return { _tag: "NotLeader", leader: undefined }
    this.send({ msgType: MessageType.ReadIndex, to: this.leader, term: 0, context })
    return { _tag: "Pending" }
  }

  /** Thesis §3.10: hand leadership to `to` once its log is up to date. */
  transferLeadership(to: NodeId, now: number): ReadOutcome {
    this.now = now
    if (this.role !== "leader") return { _tag: "NotLeader", leader: this.leader }
    const pr = this.progress.get(to)
    if (to === this.id || pr === undefined) return { _tag: "Pending" }
    this.transferee = to
    this.transferDeadline = now + this.config.electionTimeoutMinMs
    if (pr.match === this.log.lastIndex()) this.send({ msgType: MessageType.TimeoutNow, to, term: this.term })
    else this.sendAppends(to, true)
    return { _tag: "Pending" }
  }

  /** The transport refused a message we asked it to send. */
  reportDropped(m: RaftMessage): void {
    if (this.role !== "leader") return
    const pr = this.progress.get(m.to)
    if (pr === undefined) return
    // Entries after match (or the snapshot) may never arrive: resend once the peer answers again.
    const inFlight = (m.msgType === MessageType.Append && pr.state === "replicate") ||
      (m.msgType === MessageType.Snapshot && pr.state === "snapshot")
    if (inFlight) pr.lost(this.now)
  }

  /**
   * The transport reports the peer unreachable or a snapshot to it failed: whatever was in
   * flight is lost, so stop pipelining and start over from the last known match (etcd's
   * `ReportUnreachable` / `ReportSnapshot(failure)`).
   */
  reportUnreachable(peer: NodeId, now: number): void {
    this.now = now
    if (this.role !== "leader") return
    const pr = this.progress.get(peer)
    if (pr === undefined || pr.state === "probe") return
    this.note(`peer ${peer} unreachable while in ${pr.state}; probing from ${pr.match + 1}`)
    pr.lost(now)
  }

  /**
   * Every link to `peer` is down. When `peer` is this follower's leader, its lease ends and its
   * election deadline comes within the timeout's random spread from now (the minimum timeout is
   * skipped), rather than the whole timeout after the last heartbeat: a leader whose process died
   * has its connections closed at once (TCP), and waiting out the minimum only delays the next
   * leader. The spread is kept whole: the followers that lost the leader at the same moment
   * must still campaign apart, or their votes split. Safety never rests on the timeout; whether
   * a campaign goes ahead is still the pre-vote's to decide, and a voter that still hears the
   * leader keeps its lease and refuses. A heartbeat from the leader restores both. Returns the
   * new deadline when it moved earlier.
   */
  leaderUnreachable(peer: NodeId, now: number): number | undefined {
    this.now = now
    if (this.role !== "follower" || this.leader !== peer) return undefined
    this.lastLeaderContact = Number.NEGATIVE_INFINITY
    const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = this.config
    const at = now + Math.floor(this.config.random() * (max - min))
    if (at >= this.electionDeadline) return undefined
    this.note(`every link to leader ${peer} is down: election deadline in ${at - now} ms`)
    this.electionDeadline = at
    return at
  }

  /** The driver saved a snapshot of the state machine at `record.metadata.index` (§7). */
  snapshotTaken(record: SnapshotRecord): void {
    this.log.compact(record.metadata.index, record.metadata.term)
    this.snapshot = record
  }

  appliedTo(index: number): void {
    this.log.appliedTo(index)
  }

  /**
   * Storage made the log durable up to `index` (whose entry has `term`). The leader's own
   * entries count toward a quorum from here on (thesis §10.2.1: it writes in parallel with
   * replicating, and counts itself only once durable).
   */
  persistedTo(index: number, term: number): void {
    this.log.stableTo(index, term)
    if (this.role === "leader" && this.maybeCommit()) this.broadcastCommit = true
  }

  // ---------------------------------------------------------------------------
  // Output
  // ---------------------------------------------------------------------------

  ready(): Ready {
    if (this.role === "leader") {
      if (this.broadcastEntries) this.broadcastAppend()
      this.maybeCommit()
      if (this.broadcastCommit) this.announceCommit(false)
      if (this.heartbeatForReads) this.broadcastHeartbeat(this.reads.lastContext())
    }
    this.broadcastEntries = false
    this.broadcastCommit = false
    this.heartbeatForReads = false

    const hs: HardState = { term: this.term, vote: this.vote, commit: this.log.committed }
    const changed = hs.term !== this.persisted.term || hs.vote !== this.persisted.vote ||
      hs.commit !== this.persisted.commit
    this.persisted = hs
    const entries = this.log.unstableEntries()
    this.log.markStable()
    const ready: Ready = {
      hardState: changed ? hs : undefined,
      entries,
      snapshot: this.installed,
      messages: this.messages,
      readStates: this.readStates,
      readFailures: this.readFailures,
      proposalRefusals: this.proposalRefusals,
      events: this.events,
      notes: this.notes
    }
    this.installed = undefined
    this.messages = []
    this.readStates = []
    this.readFailures = []
    this.proposalRefusals = []
    this.events = []
    this.notes = []
    return ready
  }

  status(): RaftStatus {
    const peers = this.role !== "leader" ? [] : [...this.progress.values()].map((pr) => ({
      id: pr.id,
      matchIndex: pr.match,
      nextIndex: pr.next,
      inflight: pr.inflights.length,
      state: pr.state
    }))
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote === NONE ? undefined : this.vote,
      leader: this.leader,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastLogIndex: this.log.lastIndex(),
      snapshotIndex: this.log.snapshotIndex,
      voters: this.config.membership.voters,
      peers
    }
  }

  /** Voters (this one included) heard from within the last maximum election timeout. */
  reachableVoters(now: number): number {
    const m = this.config.membership
    return m.voters.filter((v) =>
      v === this.id || (this.lastHeard.get(v) ?? Number.NEGATIVE_INFINITY) >= now - this.config.electionTimeoutMaxMs
    ).length
  }

  // ---------------------------------------------------------------------------
  // Roles
  // ---------------------------------------------------------------------------

  private becomeFollower(term: number, leader: NodeId | undefined): void {
    const wasLeader = this.role === "leader"
    if (term !== this.term) {
      this.term = term
      this.vote = NONE
    }
    this.setRole("follower")
    this.setLeader(leader)
    this.votes.clear()
    this.resetElectionTimer()
    if (wasLeader) this.abandonLeadership()
  }

  /**
   * Starts an election (§5.2), preceded by a pre-vote round when enabled (thesis §9.6). A
   * pre-candidate asks "would you vote for me at term+1?" without incrementing or persisting
   * anything, so a node that cannot win (partitioned, stale log) never inflates terms.
   */
  private campaign(kind: "pre-vote" | "election", transfer = false): void {
    if (kind === "pre-vote") {
      this.setRole("pre-candidate")
    } else {
      this.term += 1
      this.vote = this.id
      this.setRole("candidate")
    }
    this.setLeader(undefined)
    this.votes.clear()
    this.votes.set(this.id, true)
    this.resetElectionTimer()
    if (this.config.membership.hasQuorum([this.id])) {
      if (kind === "pre-vote") this.campaign("election")
      else this.becomeLeader()
      return
    }
    const type = kind === "pre-vote" ? MessageType.RequestPreVote : MessageType.RequestVote
    for (const voter of this.config.membership.voters) {
      if (voter === this.id) continue
      this.send({
        msgType: type,
        to: voter,
        term: kind === "pre-vote" ? this.term + 1 : this.term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(transfer ? { context: TRANSFER_CONTEXT } : {})
      })
    }
  }

  private becomeLeader(): void {
    this.setRole("leader")
    this.setLeader(this.id)
    this.votes.clear()
    this.progress = new Map()
    for (const voter of this.config.membership.voters) {
      if (voter !== this.id) this.progress.set(voter, new Progress(voter, this.log.lastIndex() + 1))
    }
    this.heartbeatDueAt = this.now + this.config.heartbeatIntervalMs
    this.checkQuorumDueAt = this.now + this.config.electionTimeoutMinMs
    // §8: commit a no-op entry of the new term at once; until an entry of its own term is
    // committed the leader does not know which earlier entries are committed (§5.4.2), and it
    // cannot serve read-index reads (§6.4).
    this.log.append([{ term: this.term, index: this.log.lastIndex() + 1 }])
    this.broadcastEntries = true
  }

  private abandonLeadership(): void {
    this.progress = new Map()
    this.transferee = undefined
    for (const r of this.reads.clear()) this.failRead(r)
    for (const r of this.readsBeforeCommit) this.failRead(r)
    this.readsBeforeCommit = []
  }

  /**
   * Thesis §6.2: a leader that has not heard from a majority within an election timeout steps
   * down, so clients of a partitioned leader learn quickly instead of waiting on it.
   */
  private checkQuorum(): boolean {
    const active = new Set<NodeId>([this.id])
    for (const pr of this.progress.values()) {
      if (pr.recentActive) active.add(pr.id)
      pr.recentActive = false
    }
    if (!this.config.membership.hasQuorum(active)) {
      this.note(`stepping down: only ${active.size} of ${this.config.membership.voters.length} voters active`)
      this.becomeFollower(this.term, undefined)
      return false
    }
    return true
  }

  /**
   * A leader is always within its lease: check quorum (above) ends the lease by stepping it down.
   * A follower is within its leader's lease for the minimum election timeout after hearing from it.
   */
  private inLease(): boolean {
    if (this.role === "leader") return true
    return this.leader !== undefined && this.now - this.lastLeaderContact < this.config.electionTimeoutMinMs
  }

  private resetElectionTimer(): void {
    const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = this.config
    this.electionDeadline = this.now + min + Math.floor(this.config.random() * (max - min))
  }

  private setRole(role: Role): void {
    if (role === this.role) return
    this.role = role
    this.events.push({ _tag: "RoleChanged", node: this.id, role, term: this.term })
  }

  private setLeader(leader: NodeId | undefined): void {
    if (leader === this.leader) return
    this.leader = leader
    this.events.push({ _tag: "LeaderChanged", node: this.id, leader, term: this.term })
  }

  // ---------------------------------------------------------------------------
  // Elections
  // ---------------------------------------------------------------------------

  private handleVoteRequest(m: RaftMessage): void {
    const pre = m.msgType === MessageType.RequestPreVote
    const mTerm = m.term ?? 0
    const responseType = pre ? MessageType.RequestPreVoteResponse : MessageType.RequestVoteResponse
    // One vote per term (§5.2), and none while we follow a leader of this term. A pre-vote for a
    // later term promises nothing, so it is not bound by our vote.
    const canVote = this.vote === m.from || (this.vote === NONE && this.leader === undefined) ||
      (pre && mTerm > this.term)
    // §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
    if (canVote && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
      this.send({ msgType: responseType, to: m.from, term: mTerm, reject: false })
      if (!pre) {
        this.vote = m.from
        this.resetElectionTimer()
      }
    } else {
      this.send({ msgType: responseType, to: m.from, term: this.term, reject: true })
    }
  }

  private handleVoteResponse(m: RaftMessage): void {
    const pre = m.msgType === MessageType.RequestPreVoteResponse
    if (pre ? this.role !== "pre-candidate" : this.role !== "candidate") return
    if (!this.config.membership.isVoter(m.from)) return
    const granted = m.reject !== true
    // A granted pre-vote is for the term we proposed in this round.
    if (pre && granted && (m.term ?? 0) !== this.term + 1) return
    if (!this.votes.has(m.from)) this.votes.set(m.from, granted)
    const yes = [...this.votes].filter(([, v]) => v).map(([id]) => id)
    const no = this.votes.size - yes.length
    const { membership } = this.config
    if (membership.hasQuorum(yes)) {
      if (pre) this.campaign("election")
      else this.becomeLeader()
    } else if (membership.voters.length - no < membership.quorum) {
      // A majority said no: wait for a leader (or the next timeout) as a follower.
      this.becomeFollower(this.term, undefined)
    }
  }

  // ---------------------------------------------------------------------------
  // Follower side of replication
  // ---------------------------------------------------------------------------

  private handleAppend(m: RaftMessage): void {
    const prevIndex = m.index ?? 0
    const prevTerm = m.logTerm ?? 0
    if (prevIndex < this.log.committed) {
      // Everything up to our commit index is already known to match the leader (§5.4.3).
      this.send({ msgType: MessageType.AppendResponse, to: m.from, term: this.term, index: this.log.committed })
      return
    }
    const entries = (m.entries ?? []).map(normalizeEntry)
    const lastNew = this.log.maybeAppend(prevIndex, prevTerm, entries)
    if (lastNew !== undefined) {
      // Figure 2, AppendEntries rule 5: commit up to min(leaderCommit, index of last new entry).
      this.log.commitTo(Math.min(m.commit ?? 0, lastNew))
      this.send({ msgType: MessageType.AppendResponse, to: m.from, term: this.term, index: lastNew })
      return
    }
    // §5.3: log matching failed at prevIndex; hint where the leader should retry.
    const hint = this.log.findConflictByTerm(prevIndex, prevTerm)
    this.send({
      msgType: MessageType.AppendResponse,
      to: m.from,
      term: this.term,
      index: prevIndex,
      reject: true,
      rejectHint: hint,
      logTerm: this.log.term(hint) ?? 0
    })
  }

  private handleHeartbeat(m: RaftMessage): void {
    // The leader sends min(our match, its commit), which our log is known to hold.
    this.log.commitTo(Math.min(m.commit ?? 0, this.log.lastIndex()))
    const context = nonEmptyBytes(m.context)
    this.send({
      msgType: MessageType.HeartbeatResponse,
      to: m.from,
      term: this.term,
      ...(context !== undefined ? { context } : {})
    })
  }

  /** InstallSnapshot (§7). */
  private handleSnapshot(m: RaftMessage): void {
    if (m.snapshot === undefined || m.snapshot === null) return
    const record = snapshotRecordOf(m.snapshot)
    const { index, term } = record.metadata
    if (index <= this.log.committed) {
      // Older than what we have committed: nothing to install.
    } else if (this.log.matchTerm(index, term)) {
      // Our log already holds the snapshot's prefix: keep it and its suffix, just commit.
      this.log.commitTo(index)
    } else {
      this.log.restore(index, term)
      this.snapshot = record
      this.installed = { ...record, from: m.from }
      this.note(`installing snapshot ${index} (term ${term}) from ${m.from}`)
    }
    this.send({ msgType: MessageType.AppendResponse, to: m.from, term: this.term, index: this.log.committed })
  }

  // ---------------------------------------------------------------------------
  // Leader side of replication
  // ---------------------------------------------------------------------------

  private handleAppendResponse(m: RaftMessage): void {
    if (this.role !== "leader") return
    const pr = this.progress.get(m.from)
    if (pr === undefined) return
    pr.recentActive = true
    if (m.reject === true) {
      if (pr.rejected(m.index ?? 0, m.rejectHint ?? 0)) {
        this.note(`${m.from} rejected append at ${m.index ?? 0} (hint ${m.rejectHint ?? 0}); retrying from ${pr.next}`)
        this.sendAppends(m.from, true)
      }
      return
    }
    if (pr.acknowledge(m.index ?? 0)) {
      if (this.maybeCommit()) this.broadcastCommit = true
      if (this.transferee === m.from && pr.match === this.log.lastIndex()) {
        this.send({ msgType: MessageType.TimeoutNow, to: m.from, term: this.term })
      }
    }
    this.sendAppends(m.from, false)
  }

  private handleHeartbeatResponse(m: RaftMessage): void {
    if (this.role !== "leader") return
    const pr = this.progress.get(m.from)
    if (pr === undefined) return
    pr.recentActive = true
    if (pr.match < this.log.lastIndex()) this.sendAppends(m.from, false)
    const context = nonEmptyBytes(m.context)
    if (context === undefined) return
    const released = this.reads.acknowledge(contextKey(context), m.from, (acks) => this.config.membership.hasQuorum(acks))
    for (const r of released) this.releaseRead(r)
  }

  /**
   * §5.3/§5.4.2: the highest index replicated on a majority is committed, but only if it is
   * from the current term; earlier terms' entries are committed indirectly with it (Figure 8).
   */
  private maybeCommit(): boolean {
    const n = this.config.membership.committedIndex((v) =>
      v === this.id ? this.log.durable : (this.progress.get(v)?.match ?? 0)
    )
    if (n <= this.log.committed || this.log.term(n) !== this.term) return false
    this.log.commitTo(n)
    this.serveReadsBeforeCommit()
    return true
  }

  /** New entries to every follower whose pipeline has room. */
  private broadcastAppend(): void {
    for (const id of this.progress.keys()) this.sendAppends(id, false)
  }

  /**
   * Tells followers a commit index their last message from us did not carry. A follower only
   * needs it to apply, not to keep the log safe, so by default it rides on the next append or
   * heartbeat; what is still untold at the next tick goes in an empty append then. Under a
   * steady load the next append always comes first, which halves the messages of a write at
   * low concurrency (an empty append and its response per follower per write). A follower
   * that waits on the index (a write it forwarded) is told at once, as is every follower on
   * the tick (`onTick`). One the append cannot reach yet (a full pipeline, a probe or snapshot
   * under way) is tried again on the next tick.
   */
  private announceCommit(onTick: boolean): void {
    const committed = this.log.committed
    for (const pr of this.progress.values()) {
      if (pr.untold(committed) && (onTick || pr.awaitsCommit())) this.sendAppends(pr.id, true)
    }
  }

  /** Fills the peer's pipeline (replicate) or sends its probe (probe). */
  private sendAppends(to: NodeId, sendIfEmpty: boolean): void {
    let first = true
    while (this.sendAppend(to, first && sendIfEmpty)) first = false
  }

  /** One append; true when it carried entries and the pipeline may take more. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to)
    if (pr === undefined) return false
    if (!pr.canSend(this.now, this.config.maxInflightAppends, this.config.heartbeatIntervalMs)) return false
    if (pr.next > this.log.lastIndex() + 1) pr.next = this.log.lastIndex() + 1
    const prevIndex = pr.next - 1
    const prevTerm = this.log.term(prevIndex)
    if (prevTerm === undefined) {
      // §7: the entries this follower needs were compacted away.
      this.sendSnapshot(pr)
      return false
    }
    const entries = capBytes(this.log.slice(pr.next, this.log.lastIndex(), this.config.maxEntriesPerAppend), this.config.maxAppendBytes)
    if (entries.length === 0 && !sendIfEmpty) return false
    this.send({
      msgType: MessageType.Append,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed
    })
    const last = entries[entries.length - 1]?.index
    // The follower commits no further than the last entry this append matches (§5.3).
    pr.toldCommit(Math.min(this.log.committed, last ?? prevIndex))
    pr.sent(last, this.now)
    return last !== undefined && pr.state === "replicate"
  }

  private sendSnapshot(pr: Progress): void {
    const snapshot = this.snapshot
    if (snapshot === undefined) {
      this.note(`BUG: ${pr.id} needs entries before ${this.log.firstIndex()} but there is no snapshot`)
      return
    }
    this.note(`sending snapshot ${snapshot.metadata.index} (${snapshot.data.length} bytes) to ${pr.id}`)
    this.send({
      msgType: MessageType.Snapshot,
      to: pr.id,
      term: this.term,
      snapshot: {
        data: snapshot.data,
        metadata: { ...snapshot.metadata, confState: this.config.membership.confState() }
      }
    })
    pr.becomeSnapshot(snapshot.metadata.index, this.now)
  }

  /** etcd sends min(match, commit) so a follower never commits past what matches our log. */
  private broadcastHeartbeat(context: Uint8Array | undefined): void {
    for (const pr of this.progress.values()) {
      const commit = Math.min(pr.match, this.log.committed)
      this.send({
        msgType: MessageType.Heartbeat,
        to: pr.id,
        term: this.term,
        commit,
        ...(context !== undefined ? { context } : {})
      })
      pr.toldCommit(commit)
    }
  }

  // ---------------------------------------------------------------------------
  // Reads (§6.4)
  // ---------------------------------------------------------------------------

  private leaderReadIndex(request: ReadAsk): void {
    // Step 1: the leader must have committed an entry of its own term (its no-op) to know the
    // latest commit index.
    if (this.log.term(this.log.committed) !== this.term) {
      this.readsBeforeCommit.push(request)
      return
    }
    const index = this.log.committed
    if (this.config.membership.hasQuorum([this.id])) {
      this.releaseRead({ ...request, index })
      return
    }
    // Steps 2-3: record the commit index, then confirm leadership with a heartbeat round.
    this.reads.add({ ...request, index }, this.id)
    this.heartbeatForReads = true
  }

  private serveReadsBeforeCommit(): void {
    if (this.readsBeforeCommit.length === 0 || this.log.term(this.log.committed) !== this.term) return
    const waiting = this.readsBeforeCommit
    this.readsBeforeCommit = []
    for (const r of waiting) this.leaderReadIndex(r)
  }

  private releaseRead(r: IndexedRead): void {
    if (r.from === this.id) {
      this.readStates.push({ key: r.key, index: r.index })
    } else {
      // The follower serves the read once it has applied up to the index: tell it the commit.
      const pr = this.progress.get(r.from)
      if (pr !== undefined && pr.untold(r.index)) this.sendAppends(r.from, true)
      this.send({ msgType: MessageType.ReadIndexResponse, to: r.from, term: this.term, index: r.index, context: r.context })
    }
  }

  private failRead(r: ReadAsk): void {
    if (r.from === this.id) this.readFailures.push({ key: r.key, leader: this.leader, from: this.id })
    else this.send({ msgType: MessageType.ReadIndexResponse, to: r.from, term: this.term, reject: true, context: r.context })
  }

  private handleForwardedRead(m: RaftMessage): void {
    const context = nonEmptyBytes(m.context)
    if (context === undefined) return
    if (this.role !== "leader") {
      this.send({ msgType: MessageType.ReadIndexResponse, to: m.from, term: this.term, reject: true, context })
      return
    }
    this.leaderReadIndex({ key: contextKey(context), context, from: m.from })
  }

  private handleReadIndexResponse(m: RaftMessage): void {
    const key = contextKey(m.context)
    if (m.reject === true) {
      this.readFailures.push({ key, leader: this.leader === m.from ? undefined : this.leader, from: m.from })
    } else {
      this.readStates.push({ key, index: m.index ?? 0 })
    }
  }

  private handleForwardedProposal(m: RaftMessage): void {
    if (this.role !== "leader" || this.transferee !== undefined) {
      // Refused, not silently dropped: nothing was appended, so the forwarder may send it on to
      // the leader it knows, or fail it at once, instead of waiting out its whole timeout.
      this.note(`refused proposal forwarded by ${m.from}: ${this.role !== "leader" ? "not the leader" : "leadership transfer in progress"}`)
      for (const e of m.entries ?? []) {
        const context = nonEmptyBytes(e.context)
        // Without a request id the refusal could not be matched to anything.
        if (context !== undefined) this.send({ msgType: MessageType.Propose, to: m.from, term: 0, reject: true, context })
      }
      return
    }
    for (const e of m.entries ?? []) {
      const entry = normalizeEntry(e)
      this.log.append([{
        term: this.term,
        index: this.log.lastIndex() + 1,
        ...(entry.data !== undefined ? { data: entry.data } : {}),
        ...(entry.context !== undefined ? { context: entry.context } : {})
      }])
    }
    this.progress.get(m.from)?.waitFor(this.log.lastIndex())
    this.broadcastEntries = true
  }

  // ---------------------------------------------------------------------------

  private send(m: Omit<RaftMessage, "from">): void {
    this.messages.push({ ...m, from: this.id })
  }

  private note(text: string): void {
    this.notes.push(text)
  }
}

/**
 * The longest prefix of `entries` whose payloads fit in `maxBytes`, and never less than one
 * entry: a message larger than the transport's frame limit would be dropped on every resend.
 */
const capBytes = (entries: ReadonlyArray<Entry>, maxBytes: number): ReadonlyArray<Entry> => {
  let bytes = 0
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!
    bytes += (e.data?.length ?? 0) + (e.context?.length ?? 0)
    if (bytes > maxBytes && i > 0) return entries.slice(0, i)
  }
  return entries
}
