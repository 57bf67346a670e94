/**
 * A whole Raft cluster in one process for tests: one `RaftManager` per node on a `RaftNetwork`,
 * each in its own scope so it can be stopped and restarted (same storage, fresh state machine),
 * with helpers that advance the `TestClock` until a condition holds.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Exit, Layer, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { NodeId } from "../../src/message/types.ts"
import { decodeRaftConfig, type RaftConfig, type RaftConfigEncoded } from "../../src/raft/config.ts"
import type { RaftEvent, RaftStatus } from "../../src/raft/events.ts"
import { FileStorage } from "../../src/raft/file-storage.ts"
import { KvStateMachine } from "../../src/raft/kv-state-machine.ts"
import { RaftManager, type RaftManagerService } from "../../src/raft/manager.ts"
import { MemoryStorage } from "../../src/raft/memory-storage.ts"
import type { RaftStorage } from "../../src/raft/storage.ts"
import { RaftTransport } from "../../src/domain/raft-transport.ts"
import { RaftNetwork } from "./raft-network.ts"

export interface ClusterOptions {
  readonly ids: ReadonlyArray<NodeId>
  /** Overrides for every node's `[raft]` table (voters default to `ids`). */
  readonly raft?: Partial<RaftConfigEncoded>
  /** File storage under `<dataDir>/node<id>` instead of memory storage. */
  readonly dataDir?: string
  /** The state machine a node (re)starts with; a plain `KvStateMachine` by default. */
  readonly stateMachine?: (id: NodeId) => KvStateMachine
  /**
   * Ids on the network that are not voters and run no node: the test sends as them
   * (`net.transport(id)`), like a peer in the transport's table outside the Raft group.
   */
  readonly outsiders?: ReadonlyArray<NodeId>
}

interface RunningNode {
  readonly manager: RaftManagerService
  readonly sm: KvStateMachine
  readonly scope: Scope.Closeable
}

export class RaftCluster {
  readonly net: RaftNetwork
  readonly events: Array<RaftEvent> = []
  private readonly running = new Map<NodeId, RunningNode>()
  private readonly memory = new Map<NodeId, MemoryStorage>()

  private constructor(readonly options: ClusterOptions, readonly config: RaftConfig) {
    this.net = new RaftNetwork([...options.ids, ...(options.outsiders ?? [])])
  }

  /** Starts every node; they are all stopped when the enclosing scope closes. */
  static make(options: ClusterOptions): Effect.Effect<RaftCluster, never, Scope.Scope> {
    return Effect.gen(function*() {
      const config = yield* decodeRaftConfig({ voters: options.ids, ...options.raft }).pipe(Effect.orDie)
      const cluster = new RaftCluster(options, config)
      yield* Effect.addFinalizer(() => Effect.forEach([...cluster.running.keys()], (id) => cluster.stop(id), { discard: true }))
      for (const id of options.ids) yield* cluster.start(id)
      return cluster
    })
  }

  get ids(): ReadonlyArray<NodeId> {
    return this.options.ids
  }

  runningIds(): ReadonlyArray<NodeId> {
    return [...this.running.keys()].sort((a, b) => a - b)
  }

  /** Starts (or restarts) a node on its existing storage, with a fresh state machine. */
  start(id: NodeId): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      if (this.running.has(id)) return
      const scope = yield* Scope.make()
      const transport = yield* this.net.transport(id)
      const sm = this.options.stateMachine?.(id) ?? new KvStateMachine()
      const storage: RaftStorage = this.options.dataDir !== undefined
        ? yield* FileStorage.make(join(this.options.dataDir, `node${id}`), this.config.sync).pipe(
          Scope.provide(scope),
          Effect.orDie
        )
        : this.memoryFor(id)
      const layer = RaftManager.layerWithStorage(this.config, sm, storage).pipe(
        Layer.provide(Layer.succeed(RaftTransport, transport))
      )
      const context = yield* Layer.buildWithScope(layer, scope).pipe(Effect.orDie)
      const manager = Context.get(context, RaftManager)
      yield* Effect.forkIn(Stream.runForEach(manager.events, (e) => Effect.sync(() => this.events.push(e))), scope, {
        startImmediately: true
      })
      this.running.set(id, { manager, sm, scope })
    })
  }

  /** Stops a node like a crash: its fibers end, messages to it are lost; storage survives. */
  stop(id: NodeId): Effect.Effect<void> {
    return Effect.suspend(() => {
      const node = this.running.get(id)
      if (node === undefined) return Effect.void
      this.running.delete(id)
      this.net.markDown(id)
      return Scope.close(node.scope, Exit.void)
    })
  }

  memoryFor(id: NodeId): MemoryStorage {
    let storage = this.memory.get(id)
    if (storage === undefined) {
      storage = new MemoryStorage()
      this.memory.set(id, storage)
    }
    return storage
  }

  node(id: NodeId): RaftManagerService {
    return this.runningNode(id).manager
  }

  sm(id: NodeId): KvStateMachine {
    return this.runningNode(id).sm
  }

  private runningNode(id: NodeId): RunningNode {
    const node = this.running.get(id)
    if (node === undefined) throw new Error(`node ${id} is not running`)
    return node
  }

  status(id: NodeId): Effect.Effect<RaftStatus> {
    return Effect.suspend(() => this.node(id).status)
  }

  statuses(ids: ReadonlyArray<NodeId> = this.runningIds()): Effect.Effect<ReadonlyArray<RaftStatus>> {
    return Effect.forEach(ids, (id) => this.status(id))
  }

  /** Running nodes that consider themselves leader. */
  leaders(): Effect.Effect<ReadonlyArray<RaftStatus>> {
    return Effect.map(this.statuses(), (all) => all.filter((s) => s.role === "leader"))
  }

  /**
   * Advances the clock until every node in `among` follows the same leader (one of them) in
   * the same term; returns it. Dies after `timeoutMs` of virtual time.
   */
  awaitLeader(among: ReadonlyArray<NodeId> = this.runningIds(), timeoutMs = 10_000): Effect.Effect<RaftStatus> {
    return this.waitFor(
      Effect.map(this.statuses(among), (all) => {
        const leader = all.find((s) => s.role === "leader")
        if (leader === undefined) return undefined
        return all.every((s) => s.leader === leader.id && s.term === leader.term) ? leader : undefined
      }),
      timeoutMs,
      `a leader agreed on by nodes ${among.join(",")}`
    )
  }

  /** Advances the clock in small steps until `check` yields a value (not `undefined`/false). */
  waitFor<A>(check: Effect.Effect<A | undefined | false>, timeoutMs: number, what: string, stepMs = 10): Effect.Effect<A> {
    const self = this
    return Effect.gen(function*() {
      for (let waited = 0; ; waited += stepMs) {
        const value = yield* check
        if (value !== undefined && value !== false) return value
        if (waited >= timeoutMs) {
          const statuses = yield* self.statuses()
          const lines = statuses.map((s) =>
            `  node ${s.id}: ${s.role} term ${s.term} leader ${s.leader ?? "-"} commit ${s.commitIndex} applied ${s.appliedIndex} ` +
            `last ${s.lastLogIndex} snapshot ${s.snapshotIndex}` +
            s.peers.map((p) => ` [${p.id} ${p.state} m${p.matchIndex} n${p.nextIndex} i${p.inflight}]`).join("")
          )
          return yield* Effect.die(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${lines.join("\n")}`))
        }
        yield* TestClock.adjust(stepMs)
      }
    })
  }

  /** Waits until every running node has applied at least `index`. */
  awaitApplied(index: number, ids: ReadonlyArray<NodeId> = this.runningIds(), timeoutMs = 10_000): Effect.Effect<void> {
    return this.waitFor(
      Effect.map(this.statuses(ids), (all) => all.every((s) => s.appliedIndex >= index)),
      timeoutMs,
      `nodes ${ids.join(",")} to apply index ${index}`
    ).pipe(Effect.asVoid)
  }
}

export const advance = (ms: number): Effect.Effect<void> => TestClock.adjust(ms)

/** A fresh temporary directory, removed with everything in it when the scope closes. */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** term -> the nodes that became leader in it (Election Safety: one each), from collected events. */
export const leadersByTerm = (events: ReadonlyArray<RaftEvent>): Map<number, Set<NodeId>> => {
  const byTerm = new Map<number, Set<NodeId>>()
  for (const e of events) {
    if (e._tag === "RoleChanged" && e.role === "leader") byTerm.set(e.term, (byTerm.get(e.term) ?? new Set()).add(e.node))
  }
  return byTerm
}
