/**
 * A cluster of node processes (`src/node/main.ts run`) on loopback, for the demo, the cluster
 * tests and the cluster benchmark: key files and node TOML configs in a directory (free ports
 * picked up front, keys generated first so every peer table is complete), processes that can
 * be killed and restarted on the same ports and data, and a small HTTP client for the API.
 *
 * Every process is a direct child (`node --import tsx main.ts`), so SIGKILL really kills the
 * node. Processes are killed when the scope they were started in closes.
 */
import { Clock, Data, Deferred, Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createSocket } from "node:dgram"
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { stringify } from "smol-toml"
import { endpointIdOf, loadOrCreateSecretKey } from "../iroh/identity.ts"
import { describeCause } from "../domain/errors.ts"
import type { StatusBody } from "./http-api.ts"
import { nodeV8Flags } from "./v8-flags.ts"

export type ClusterTransport = "iroh" | "grpc" | "dual"

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url))
/** The package root: `--import tsx` resolves from here. */
const ROOT = fileURLToPath(new URL("../../", import.meta.url))

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

export class ClusterError extends Data.TaggedError("ClusterError")<{
  readonly message: string
  readonly cause?: unknown
  /** A node exited because one of its ports was taken (see `LocalCluster.startAll`). */
  readonly addressInUse?: boolean
}> {}

/** The node did not answer: connection refused or reset, or the request timed out. */
export class NodeUnreachable extends Data.TaggedError("NodeUnreachable")<{
  readonly node: number
  readonly reason: string
}> {
  override get message() {
    return `node ${this.node} unreachable: ${this.reason}`
  }
}

// -----------------------------------------------------------------------------
// Ports
// -----------------------------------------------------------------------------

const listenTcp = (): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const portOf = (address: unknown): number =>
  typeof address === "object" && address !== null && "port" in address && typeof address.port === "number" ? address.port : 0

/**
 * `tcp` free TCP ports and `udp` free UDP ports on 127.0.0.1: every socket is held until all
 * are bound (so no port is handed out twice), then closed.
 */
const freePorts = (tcp: number, udp: number): Effect.Effect<{ tcp: Array<number>; udp: Array<number> }, ClusterError> =>
  Effect.tryPromise({
    try: async () => {
      const servers: Array<Server> = []
      const sockets: Array<ReturnType<typeof createSocket>> = []
      try {
        for (let i = 0; i < tcp; i++) servers.push(await listenTcp())
        for (let i = 0; i < udp; i++) {
          const socket = createSocket("udp4")
          sockets.push(socket)
          await new Promise<void>((resolve, reject) => {
            socket.once("error", reject)
            socket.bind(0, "127.0.0.1", () => resolve())
          })
        }
        return { tcp: servers.map((s) => portOf(s.address())), udp: sockets.map((s) => s.address().port) }
      } finally {
        await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
        await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
      }
    },
    catch: (cause) => new ClusterError({ message: `cannot pick free ports: ${String(cause)}`, cause })
  })

// -----------------------------------------------------------------------------
// Configs
// -----------------------------------------------------------------------------

export interface NodeSpec {
  readonly id: number
  readonly configFile: string
  readonly keyFile: string
  readonly logFile: string
  readonly dataDir: string
  /** `127.0.0.1:port` of the HTTP API. */
  readonly http: string
  readonly iroh: string | undefined
  readonly grpc: string | undefined
  readonly endpointId: string
}

export interface LayoutOptions {
  /** Where configs, keys, data and logs go. */
  readonly dir: string
  readonly nodes: number
  readonly transport: ClusterTransport
  /** Extra keys for every node's `[raft]` table (`voters` and `data_dir` are set here). */
  readonly raft?: Record<string, unknown>
}

/**
 * Writes a key file and `node<id>.toml` per node into `dir` (ids 1..n) and returns where each
 * node listens. Every config lists every other node as a peer with its fixed address.
 */
const writeClusterConfigs = (options: LayoutOptions): Effect.Effect<ReadonlyArray<NodeSpec>, ClusterError> =>
  Effect.gen(function*() {
    const { dir, nodes: n, transport } = options
    const usesIroh = transport !== "grpc"
    const usesGrpc = transport !== "iroh"
    const ports = yield* freePorts(n * (usesGrpc ? 2 : 1), usesIroh ? n : 0)
    const ids = Array.from({ length: n }, (_, i) => i + 1)
    const specs: Array<NodeSpec> = []
    for (const id of ids) {
      const nodeDir = join(dir, `node${id}`)
      mkdirSync(nodeDir, { recursive: true })
      const keyFile = join(nodeDir, "iroh.key")
      const key = yield* loadOrCreateSecretKey(keyFile).pipe(
        Effect.mapError((e) => new ClusterError({ message: e.message, cause: e }))
      )
      const i = id - 1
      specs.push({
        id,
        configFile: join(dir, `node${id}.toml`),
        keyFile,
        logFile: join(dir, `node${id}.log`),
        dataDir: join(nodeDir, "data"),
        http: `127.0.0.1:${ports.tcp[i]}`,
        iroh: usesIroh ? `127.0.0.1:${ports.udp[i]}` : undefined,
        grpc: usesGrpc ? `127.0.0.1:${ports.tcp[n + i]}` : undefined,
        endpointId: endpointIdOf(key)
      })
    }
    for (const spec of specs) {
      const peers = specs.filter((p) => p.id !== spec.id).map((p) => ({
        id: p.id,
        ...(p.iroh !== undefined ? { iroh_endpoint_id: p.endpointId, iroh_addresses: [p.iroh] } : {}),
        ...(p.grpc !== undefined ? { grpc_address: p.grpc } : {})
      }))
      const doc = {
        transport: {
          node_id: spec.id,
          mode: transport,
          cluster_id: "local-cluster",
          bind_address: "127.0.0.1:0",
          ...(spec.iroh !== undefined
            ? { iroh_config: { key_file: spec.keyFile, relay_mode: "disabled", bind_address: spec.iroh } }
            : {}),
          ...(spec.grpc !== undefined ? { grpc_config: { bind_address: spec.grpc } } : {}),
          reconnect: { initial_backoff_ms: 20, max_backoff_ms: 500 },
          strategy: { probe_interval_ms: 250 },
          peers
        },
        raft: { voters: ids, data_dir: spec.dataDir, ...options.raft },
        http: { bind_address: spec.http }
      }
      writeFileSync(spec.configFile, stringify(doc))
    }
    return specs
  })

// -----------------------------------------------------------------------------
// Processes
// -----------------------------------------------------------------------------

export interface ReadyLine {
  readonly id: number
  readonly http: string
  readonly iroh: { readonly endpointId: string; readonly addresses: ReadonlyArray<string>; readonly ticket: string } | null
  readonly grpc: string | null
}

export interface NodeProcess {
  readonly id: number
  readonly pid: number
  readonly ready: ReadyLine
  /** Still running (not exited). */
  readonly running: () => boolean
  /** Sends `signal` and waits for the process to exit. */
  readonly kill: (signal: "SIGTERM" | "SIGKILL" | "SIGINT") => Effect.Effect<void>
  /** Sends a signal without waiting (`SIGSTOP` freezes the node, `SIGCONT` resumes it). */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
}

const tail = (file: string, chars = 3000): string => {
  try {
    return readFileSync(file, "utf8").slice(-chars)
  } catch (error) {
    return `(cannot read ${file}: ${describeCause(error)})`
  }
}

/**
 * Starts a node process for `spec` and waits for its `ready` line. Its stderr (the logs) is
 * appended to `spec.logFile`. The process is SIGKILLed when the scope closes, if still running.
 */
const spawnNode = (spec: NodeSpec, logLevel = "info"): Effect.Effect<NodeProcess, ClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const log = openSync(spec.logFile, "a")
          try {
            return spawn(
              process.execPath,
              [...nodeV8Flags(), "--import", "tsx", MAIN, "run", "--config", spec.configFile, "--log-level", logLevel],
              { cwd: ROOT, stdio: ["ignore", "pipe", log] }
            )
          } finally {
            closeSync(log)
          }
        },
        catch: (cause) => new ClusterError({ message: `cannot start node ${spec.id}: ${String(cause)}`, cause })
      }),
      (c) =>
        Effect.callback<void>((resume) => {
          if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.void)
          c.once("exit", () => resume(Effect.void))
          c.kill("SIGKILL")
        })
    )
    const exited = yield* Deferred.make<void>()
    const ready = yield* Deferred.make<ReadyLine, ClusterError>()
    child.once("exit", (code, signal) => {
      Deferred.doneUnsafe(exited, Exit.void)
      if (Deferred.isDoneUnsafe(ready)) return
      const log = tail(spec.logFile)
      Deferred.doneUnsafe(
        ready,
        Exit.fail(
          new ClusterError({
            message: `node ${spec.id} exited (${signal ?? code}) before it was ready:\n${log}`,
            // HTTP, gRPC (Node's EADDRINUSE) and Iroh (the OS error) all say it this way.
            addressInUse: /address already in use/i.test(log)
          })
        )
      )
    })
    // Spawn failures (and failed signals later on) land here; before `ready` they fail the start.
    child.on("error", (cause) => {
      const failed = Deferred.doneUnsafe(ready, Exit.fail(new ClusterError({ message: `node ${spec.id}: ${cause.message}`, cause })))
      if (!failed) process.stderr.write(`local cluster: node ${spec.id} process error: ${cause.message}\n`)
    })
    const stdout = child.stdout
    if (stdout !== null) {
      createInterface({ input: stdout }).on("line", (line) => {
        if (!line.startsWith("{")) return
        try {
          const parsed = JSON.parse(line) as { ready?: ReadyLine }
          if (parsed.ready !== undefined) Deferred.doneUnsafe(ready, Exit.succeed(parsed.ready))
        } catch (cause) {
          Deferred.doneUnsafe(ready, Exit.fail(new ClusterError({ message: `node ${spec.id} printed ${line}`, cause })))
        }
      })
    }
    const readyLine = yield* Deferred.await(ready).pipe(
      Effect.timeoutOrElse({
        duration: 30_000,
        orElse: () => Effect.fail(new ClusterError({ message: `node ${spec.id} not ready:\n${tail(spec.logFile)}` }))
      })
    )
    const running = () => child.exitCode === null && child.signalCode === null
    return {
      id: spec.id,
      pid: child.pid ?? -1,
      ready: readyLine,
      running,
      signal: (signal) => Effect.sync(() => void (running() && child.kill(signal))),
      kill: (signal) =>
        Effect.suspend(() => {
          if (!running()) return Effect.void
          child.kill(signal)
          return Deferred.await(exited)
        })
    }
  })

// -----------------------------------------------------------------------------
// HTTP client
// -----------------------------------------------------------------------------

export interface HttpReply {
  readonly status: number
  /** Parsed JSON when the reply is JSON, else the text. */
  readonly body: unknown
}

/** One HTTP request to a node's API; connection errors and timeouts are `NodeUnreachable`. */
const request = (
  node: { readonly id: number; readonly http: string },
  method: "GET" | "PUT" | "DELETE",
  path: string,
  options: { readonly body?: string; readonly timeoutMs?: number } = {}
): Effect.Effect<HttpReply, NodeUnreachable> =>
  Effect.tryPromise({
    try: async (signal) => {
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000)
      const response = await fetch(`http://${node.http}${path}`, {
        method,
        ...(options.body !== undefined ? { body: options.body } : {}),
        signal: AbortSignal.any([signal, timeout])
      })
      const text = await response.text()
      const isJson = (response.headers.get("content-type") ?? "").includes("json")
      return { status: response.status, body: isJson && text.length > 0 ? (JSON.parse(text) as unknown) : text }
    },
    catch: (cause) => new NodeUnreachable({ node: node.id, reason: describeFetchError(cause) })
  })

/** `ECONNREFUSED`, `timeout`, ...: short, as the workload counts failures by this reason. */
const describeFetchError = (cause: unknown): string => {
  if (!(cause instanceof Error)) return describeCause(cause)
  const inner = cause.cause
  if (inner instanceof Error) return "code" in inner && typeof inner.code === "string" ? inner.code : inner.message
  return cause.name === "TimeoutError" ? "timeout" : cause.message
}

/** What `GET /status` answers. */
export type NodeStatus = StatusBody

/** `GET path`; any status but 200 counts as the node not answering. */
const getOk = (node: { readonly id: number; readonly http: string }, path: string, timeoutMs: number) =>
  Effect.flatMap(request(node, "GET", path, { timeoutMs }), (reply) =>
    reply.status === 200
      ? Effect.succeed(reply.body)
      : Effect.fail(new NodeUnreachable({ node: node.id, reason: `${path} answered ${reply.status}` })))

const getStatus = (node: { readonly id: number; readonly http: string }, timeoutMs: number) =>
  Effect.map(getOk(node, "/status", timeoutMs), (body) => body as NodeStatus)

/** `name{labels} value` samples of a Prometheus text exposition. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const parsePrometheus = (text: string): Array<Sample> => {
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    const body = m[2] ?? ""
    for (const l of body.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

export const getMetrics = (node: { readonly id: number; readonly http: string }) =>
  Effect.map(getOk(node, "/metrics", 5000), (body) => parsePrometheus(String(body)))

// -----------------------------------------------------------------------------
// The cluster
// -----------------------------------------------------------------------------

export interface ClusterOptions extends LayoutOptions {
  readonly logLevel?: string
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
      const proc = yield* spawnNode(this.spec(id), this.options.logLevel).pipe(
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
