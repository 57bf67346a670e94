/**
 * `RaftManager`: the reference Raft node with its key-value state machine, as an Effect service
 * on top of `RaftTransport`. Everything it starts (node fibers, storage files) lives in the
 * layer's scope.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { ConfigError } from "../config/errors.ts"
import { RaftTransport } from "../domain/raft-transport.ts"
import type { RaftConfig } from "./config.ts"
import type { SnapshotUnusable, StorageError } from "./errors.ts"
import { FileStorage } from "./file-storage.ts"
import { encodeKvCommand, type KvResult, type KvStateMachine } from "./kv-state-machine.ts"
import { MemoryStorage } from "./memory-storage.ts"
import { makeRaftNode, type ProposeError, type RaftNode, type ReadError, type RequestOptions } from "./node.ts"
import type { RaftStorage } from "./storage.ts"

/** What a proposal returns once applied: the key-value state machine's result. */
export type ApplyResult = KvResult

/** The node's operations, with commands (`propose`) as UTF-8 JSON `KvCommand`s, and key-value shorthands. */
export interface RaftManagerService extends Omit<RaftNode<ApplyResult>, "read"> {
  /** `propose` of `{ op: "put", key, value }`. */
  readonly put: (key: string, value: string, options?: RequestOptions) => Effect.Effect<ApplyResult, ProposeError>
  /** `propose` of `{ op: "delete", key }`. */
  readonly delete: (key: string, options?: RequestOptions) => Effect.Effect<ApplyResult, ProposeError>
  /** A linearizable read (read index, §6.4), on the leader or through it. */
  readonly read: (key: string, options?: RequestOptions) => Effect.Effect<string | undefined, ReadError>
}

/** The storage the config asks for: files in `data_dir`, or memory when it is absent. */
export const storageFor = (config: RaftConfig): Effect.Effect<RaftStorage, StorageError, Scope.Scope> =>
  config.data_dir === undefined
    ? Effect.succeed(new MemoryStorage())
    : FileStorage.make(config.data_dir, config.sync)

/** The key-value Raft node on the `RaftTransport` in context, in the caller's scope (`RaftManager.layer` is this as a layer). */
export const makeRaftManager = (
  config: RaftConfig,
  stateMachine: KvStateMachine,
  storage: RaftStorage
): Effect.Effect<RaftManagerService, StorageError | SnapshotUnusable | ConfigError, Scope.Scope | RaftTransport> =>
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
      ...node,
      put: (key, value, options) => node.propose(encodeKvCommand({ op: "put", key, value }), options),
      delete: (key, options) => node.propose(encodeKvCommand({ op: "delete", key }), options),
      read: (key, options) => node.read(() => stateMachine.get(key), options)
    }
  })

/**
 * The reference Raft node with the key-value state machine, as a service.
 *
 * @example
 * ```ts
 * const layer = RaftManager.layer(config, new KvStateMachine())   // needs RaftTransport
 * const program = Effect.gen(function*() {
 *   const raft = yield* RaftManager
 *   yield* raft.put("k", "v")
 *   return yield* raft.read("k")
 * })
 * ```
 */
export class RaftManager extends Context.Service<RaftManager, RaftManagerService>()("raft-transport/RaftManager") {
  /** A Raft node for `config`, storing in `data_dir` (or memory), applying to `stateMachine`. */
  static layer(
    config: RaftConfig,
    stateMachine: KvStateMachine
  ): Layer.Layer<RaftManager, StorageError | SnapshotUnusable | ConfigError, RaftTransport> {
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
  ): Layer.Layer<RaftManager, StorageError | SnapshotUnusable | ConfigError, RaftTransport> {
    return Layer.effect(RaftManager, makeRaftManager(config, stateMachine, storage))
  }
}
