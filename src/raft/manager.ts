/**
 * `RaftManager`: the reference Raft node with its key-value state machine, as an Effect service
 * on top of `RaftTransport`. Everything it starts (node fibers, storage files) lives in the
 * layer's scope.
 */
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import { ConfigError } from "../config/errors.ts"
import type { NodeId } from "../message/types.ts"
import { RaftTransport } from "../transport/service.ts"
import type { RaftConfig } from "./config.ts"
import type { NotLeader, StorageError } from "./errors.ts"
import type { RaftEvent, RaftStatus } from "./events.ts"
import { FileStorage } from "./file-storage.ts"
import { encodeKvCommand, type KvResult, type KvStateMachine } from "./kv-state-machine.ts"
import { MemoryStorage } from "./memory-storage.ts"
import { makeRaftNode, type ProposeError, type ReadError, type RequestOptions } from "./node.ts"
import type { RaftStorage } from "./storage.ts"

/** What a proposal returns once applied: the key-value state machine's result. */
export type ApplyResult = KvResult

export interface RaftManagerService {
  readonly id: NodeId
  /**
   * Replicates a command (a UTF-8 JSON `KvCommand`) and succeeds with its result once this node
   * applied it. A follower forwards it to the leader. Fails with `NotLeader` when no leader is
   * known, `NoQuorum` when it does not commit in time (config `proposal_timeout_ms`, or
   * `options.timeoutMs`), `ProposalDropped` when it is known to be lost.
   */
  readonly propose: (command: Uint8Array, options?: RequestOptions) => Effect.Effect<ApplyResult, ProposeError>
  /** `propose` of `{ op: "put", key, value }`. */
  readonly put: (key: string, value: string, options?: RequestOptions) => Effect.Effect<ApplyResult, ProposeError>
  /** `propose` of `{ op: "delete", key }`. */
  readonly delete: (key: string, options?: RequestOptions) => Effect.Effect<ApplyResult, ProposeError>
  /** A linearizable read (read index, §6.4), on the leader or through it. */
  readonly read: (key: string, options?: RequestOptions) => Effect.Effect<string | undefined, ReadError>
  readonly status: Effect.Effect<RaftStatus>
  /** Leader only: hands leadership to `to` as soon as its log is up to date (thesis §3.10). */
  readonly transferLeadership: (to: NodeId) => Effect.Effect<void, NotLeader>
  /** Role, leader and snapshot events; subscribe before the events you care about. */
  readonly events: Stream.Stream<RaftEvent>
  /**
   * Completes when the node stops: fails with the `StorageError` that stopped it (fail-stop:
   * exit and restart the process), succeeds when the layer's scope closes.
   */
  readonly done: Effect.Effect<void, StorageError>
}

/** The storage the config asks for: files in `data_dir`, or memory when it is absent. */
export const storageFor = (config: RaftConfig): Effect.Effect<RaftStorage, StorageError, Scope.Scope> =>
  config.data_dir === undefined
    ? Effect.succeed(new MemoryStorage())
    : FileStorage.make(config.data_dir, config.sync)

export const makeRaftManager = (
  config: RaftConfig,
  stateMachine: KvStateMachine,
  storage: RaftStorage
): Effect.Effect<RaftManagerService, StorageError | ConfigError, Scope.Scope | RaftTransport> =>
  Effect.gen(function*() {
    const transport = yield* RaftTransport
    if (!config.voters.includes(transport.nodeId)) {
      return yield* ConfigError.single(
        "raft.voters",
        `Expected the voters to include this node's id ${transport.nodeId}, got [${config.voters.join(", ")}]`
      )
    }
    const node = yield* makeRaftNode({ config, transport, storage, stateMachine })
    return {
      id: node.id,
      propose: node.propose,
      put: (key, value, options) => node.propose(encodeKvCommand({ op: "put", key, value }), options),
      delete: (key, options) => node.propose(encodeKvCommand({ op: "delete", key }), options),
      read: (key, options) => node.read(() => stateMachine.get(key), options),
      status: node.status,
      transferLeadership: node.transferLeadership,
      events: node.events,
      done: node.done
    }
  })

export class RaftManager extends Context.Service<RaftManager, RaftManagerService>()("raft-transport/RaftManager") {
  /** A Raft node for `config`, storing in `data_dir` (or memory), applying to `stateMachine`. */
  static layer(
    config: RaftConfig,
    stateMachine: KvStateMachine
  ): Layer.Layer<RaftManager, StorageError | ConfigError, RaftTransport> {
    return Layer.effect(
      RaftManager,
      Effect.flatMap(storageFor(config), (storage) => makeRaftManager(config, stateMachine, storage))
    )
  }

  /** As `layer`, with storage supplied by the caller (tests keep one across restarts). */
  static layerWithStorage(
    config: RaftConfig,
    stateMachine: KvStateMachine,
    storage: RaftStorage
  ): Layer.Layer<RaftManager, StorageError | ConfigError, RaftTransport> {
    return Layer.effect(RaftManager, makeRaftManager(config, stateMachine, storage))
  }
}
