/**
 * A cluster of node processes (`src/node/main.ts run`) on loopback, for the demo, the cluster
 * tests and the cluster benchmark: key files and node TOML configs in a directory (free ports
 * picked up front, keys generated first so every peer table is complete), processes that can
 * be killed and restarted on the same ports and data, and a small HTTP client for the API.
 *
 * Every process is a direct child (`node --import tsx main.ts`), so SIGKILL really kills the
 * node. Processes are killed when the scope they were started in closes.
 */
import { Clock, Effect, Exit, Scope } from "effect"
import { ClusterError } from "./cluster/errors.ts"
import { type LayoutOptions, type NodeSpec, writeClusterConfigs } from "./cluster/configs.ts"
import { type NodeProcess, spawnNode } from "./cluster/processes.ts"
import { getStatus, type NodeStatus, request } from "./cluster/http-client.ts"

export { ClusterError, NodeUnreachable } from "./cluster/errors.ts"
export type { ClusterTransport, LayoutOptions, NodeSpec } from "./cluster/configs.ts"
export type { NodeProcess, ReadyLine } from "./cluster/processes.ts"
export { getMetrics, type HttpReply, type NodeStatus, type Sample } from "./cluster/http-client.ts"


export interface ClusterOptions extends LayoutOptions {
  readonly logLevel?: string
  /**
   * Extra Node flags for every node process, e.g. `--cpu-prof --cpu-prof-dir=<dir>` (Node
   * refuses those in NODE_OPTIONS); a profile is written when a node exits on SIGTERM or SIGINT.
   */
  readonly nodeFlags?: ReadonlyArray<string>
}

/**
 * N node processes on loopback. `start`/`kill`/`restart` individual nodes; every process
 * still running is killed when the scope given to `make` closes.
 */
export class LocalCluster {
  private readonly procs = new Map<number, { readonly proc: NodeProcess; readonly scope: Scope.Closeable }>()

  private constructor(
    readonly options: ClusterOptions,
    private layout: ReadonlyArray<NodeSpec>,
    private readonly scope: Scope.Scope
  ) {}

  get specs(): ReadonlyArray<NodeSpec> {
    return this.layout
  }

  static make(options: ClusterOptions): Effect.Effect<LocalCluster, ClusterError, Scope.Scope> {
    return Effect.gen(function*() {
      const specs = yield* writeClusterConfigs(options)
      const scope = yield* Effect.scope
      return new LocalCluster(options, specs, scope)
    })
  }

  get ids(): ReadonlyArray<number> {
    return this.specs.map((s) => s.id)
  }

  spec(id: number): NodeSpec {
    const spec = this.specs.find((s) => s.id === id)
    if (spec === undefined) throw new Error(`no node ${id}`)
    return spec
  }

  /** Ids of the nodes whose process runs. */
  running(): ReadonlyArray<number> {
    return [...this.procs.entries()].filter(([, p]) => p.proc.running()).map(([id]) => id).sort((a, b) => a - b)
  }

  process(id: number): NodeProcess | undefined {
    return this.procs.get(id)?.proc
  }

  /** Starts node `id` (a no-op while it runs), on its config, ports, key and data. */
  start(id: number): Effect.Effect<NodeProcess, ClusterError> {
    return Effect.gen({ self: this }, function*() {
      const existing = this.procs.get(id)
      if (existing !== undefined && existing.proc.running()) return existing.proc
      if (existing !== undefined) yield* Scope.close(existing.scope, Exit.void)
      const scope = yield* Scope.fork(this.scope)
      const proc = yield* spawnNode(this.spec(id), this.options.logLevel, this.options.nodeFlags).pipe(
        Scope.provide(scope),
        Effect.onError(() => Scope.close(scope, Exit.void))
      )
      this.procs.set(id, { proc, scope })
      return proc
    })
  }

  /**
   * Starts the given nodes (default: all) concurrently. Ports are picked free when the configs
   * are written but bound only when a node starts, so another process can take one in between.
   * When no node was running (no config is in use) and a node exits on an address in use, the
   * nodes started are killed, the configs rewritten on fresh ports (keys and data stay) and the
   * start tried once more.
   */
  startAll(ids: ReadonlyArray<number> = this.ids): Effect.Effect<void, ClusterError> {
    const startThem = Effect.forEach(ids, (id) => this.start(id), { concurrency: "unbounded", discard: true })
    return Effect.suspend(() =>
      this.running().length > 0 ? startThem : startThem.pipe(
        Effect.catchIf((error) => error.addressInUse === true, () =>
          Effect.gen({ self: this }, function*() {
            yield* Effect.forEach(this.running(), (id) => this.kill(id), { discard: true })
            this.layout = yield* writeClusterConfigs(this.options)
            yield* startThem
          }))
      )
    )
  }

  /** Kills node `id` with `signal` (default SIGKILL) and waits for it to exit. */
  kill(id: number, signal: "SIGTERM" | "SIGKILL" | "SIGINT" = "SIGKILL"): Effect.Effect<void> {
    return Effect.suspend(() => this.procs.get(id)?.proc.kill(signal) ?? Effect.void)
  }

  /** Freezes node `id` (SIGSTOP): its sockets stay open but it answers nothing, like a hung host. */
  pause(id: number): Effect.Effect<void> {
    return Effect.suspend(() => this.procs.get(id)?.proc.signal("SIGSTOP") ?? Effect.void)
  }

  /** Resumes a paused node (SIGCONT). */
  resume(id: number): Effect.Effect<void> {
    return Effect.suspend(() => this.procs.get(id)?.proc.signal("SIGCONT") ?? Effect.void)
  }

  restart(id: number, signal: "SIGTERM" | "SIGKILL" = "SIGKILL"): Effect.Effect<NodeProcess, ClusterError> {
    return Effect.andThen(this.kill(id, signal), this.start(id))
  }

  /** `GET /status` of the running nodes among `ids` (default all); nodes that do not answer are left out. */
  statuses(timeoutMs = 2000, ids?: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<NodeStatus>> {
    return Effect.forEach(
      this.running().filter((id) => ids === undefined || ids.includes(id)),
      (id) => Effect.option(getStatus(this.spec(id), timeoutMs)),
      { concurrency: "unbounded" }
    ).pipe(Effect.map((all) => all.flatMap((o) => (o._tag === "Some" ? [o.value] : []))))
  }

  /**
   * The leader every running node agrees on (the leader itself saying so), once there is one;
   * fails after `timeoutMs`.
   */
  waitForLeader(options: { readonly timeoutMs?: number; readonly among?: ReadonlyArray<number> } = {}): Effect.Effect<NodeStatus, ClusterError> {
    return Effect.gen({ self: this }, function*() {
      const timeoutMs = options.timeoutMs ?? 20_000
      const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
      let last: ReadonlyArray<NodeStatus> = []
      while ((yield* Clock.currentTimeMillis) < deadline) {
        const among = options.among ?? this.running()
        last = yield* this.statuses(1000, among)
        const leader = agreedLeader(last, among.length)
        if (leader !== undefined) return leader
        yield* Effect.sleep(50)
      }
      return yield* new ClusterError({
        message: `no agreed leader within ${timeoutMs} ms: ${
          last.map((s) => `node ${s.id} ${s.role} term ${s.term} leader ${s.leader}`).join("; ")
        }`
      })
    })
  }

  /** A request to node `id`'s API. */
  request(id: number, method: "GET" | "PUT" | "DELETE", path: string, options: { readonly body?: string; readonly timeoutMs?: number } = {}) {
    return request(this.spec(id), method, path, options)
  }

  /** `timeoutMs` is the node's budget (`?timeout_ms=`); the client waits 2 s longer for its answer. */
  put(id: number, key: string, value: string, timeoutMs?: number) {
    return this.kv(id, "PUT", key, timeoutMs, value)
  }

  get(id: number, key: string, timeoutMs?: number) {
    return this.kv(id, "GET", key, timeoutMs)
  }

  private kv(id: number, method: "GET" | "PUT", key: string, timeoutMs: number | undefined, body?: string) {
    const query = timeoutMs !== undefined ? `?timeout_ms=${timeoutMs}` : ""
    return this.request(id, method, `/kv/${encodeURIComponent(key)}${query}`, {
      ...(body !== undefined ? { body } : {}),
      timeoutMs: (timeoutMs ?? 10_000) + 2000
    })
  }
}

/** The leader when all `expected` statuses are in and name the same node, which says it leads. */
export const agreedLeader = (statuses: ReadonlyArray<NodeStatus>, expected: number): NodeStatus | undefined => {
  if (statuses.length < expected || statuses.length === 0) return undefined
  const leaderId = statuses[0]!.leader
  if (leaderId === null || !statuses.every((s) => s.leader === leaderId)) return undefined
  const leader = statuses.find((s) => s.id === leaderId)
  return leader !== undefined && leader.role === "leader" && statuses.every((s) => s.term === leader.term) ? leader : undefined
}
