/**
 * The client HTTP API of a node process:
 *
 * - `PUT /kv/:key` (body = value), `DELETE /kv/:key`: replicate through Raft; 200
 *   `{"ok":true,"op","key","previous","node"}` once applied on this node. A follower forwards the
 *   proposal to the leader. A PUT whose command would not fit in one Raft message is refused
 *   with 413 `{"error":"too_large","message"}` (see `maxCommandBytes`).
 * - `GET /kv/:key`: a linearizable read (read index); 200 `{"key","value"}`, 404 when absent.
 * - `GET /status`: role, term, leader, commit/applied/snapshot index, replication progress, the
 *   transport's peers with their routes and link states, and event counters.
 * - `GET /metrics`: the Prometheus text of the process's metrics registry.
 * - `GET /health`: `ok` while the process serves (liveness).
 * - `GET /ready`: readiness: 200 `{"ready":true,"role","term","leader","reachable","voters"}`
 *   when a leader is known and a quorum is reachable, else 503 with `"ready":false` and a
 *   `reason` (`no_leader`, `no_quorum`). See `readiness`.
 *
 * Requests wait for a leader while an election runs, up to their timeout (`?timeout_ms=`,
 * else `[http] request_timeout_ms`, else `raft.proposal_timeout_ms`). Errors are 503 JSON:
 * `{"error":"not_leader","leader":id|null,"message"}` when no leader could be reached but this
 * node sees a majority of voters connected, `{"error":"no_quorum","message"}` when a write or
 * read could not be committed / confirmed in time or no leader emerged while a majority is
 * unreachable, `{"error":"proposal_dropped","message"}` when the proposal is known to be lost.
 * Nothing hangs: every Raft request carries its deadline. Connections are bounded by
 * `http-limits.ts` (header, body and idle timeouts, a connection cap), so no client can hold
 * the file descriptors the Raft storage needs.
 */
import { Clock, Data, Effect, FiberSet, Metric, Result, type Scope, Stream } from "effect"
import { splitHostPort, type TransportConfig } from "../config/schema.ts"
import { classNames } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "../metrics/prometheus.ts"
import type { NoQuorum, NotLeader, ProposalDropped } from "../raft/errors.ts"
import { encodeKvCommand } from "../raft/kv-state-machine.ts"
import type { RaftStatus } from "../raft/events.ts"
import type { ApplyResult, RaftManagerService } from "../raft/manager.ts"
import { describeCause } from "../domain/errors.ts"
import type { RaftTransportService } from "../domain/raft-transport.ts"
import { DEFAULT_HTTP_LIMITS, type HttpLimits, limitedHttpServer } from "./http-limits.ts"
import { type HttpReply, type HttpRequest, jsonReply, listen, serveRequests, textReply } from "./http-server.ts"

/** The HTTP API could not bind its address. */
export class HttpApiStartFailed extends Data.TaggedError("HttpApiStartFailed")<{
  readonly address: string
  readonly reason: string
}> {
  override get message() {
    return `cannot serve the HTTP API on ${this.address}: ${this.reason}`
  }
}

/** How `serveHttpApi` serves. */
export interface HttpApiOptions {
  /** `host:port`; port 0 picks a free port. */
  readonly bindAddress: string
  /** Default time budget of a request, waiting for a leader included. */
  readonly requestTimeoutMs: number
  /** Largest encoded command a PUT may propose (413 above it): `maxCommandBytes(transport)`. */
  readonly maxCommandBytes: number
  /** Header, body and idle timeouts and the connection cap (`http-limits.ts`); default `DEFAULT_HTTP_LIMITS`. */
  readonly limits?: HttpLimits
}

/** Pause between attempts while no leader is known. */
const RETRY_MS = 25

/** Room left around a command for the Raft message and entry (terms, indexes, request id). */
const ENVELOPE_BYTES = 1024

/**
 * The largest command (`{"op":"put","key","value"}` as UTF-8 JSON) one Raft message can carry
 * over this transport. The transport drops a larger message on every send (`too_large`), so
 * such an entry would never commit and every entry after it would wait behind it.
 */
export const maxCommandBytes = (transport: TransportConfig): number => {
  const grpc = transport.mode !== "iroh" && transport.grpc_config.enabled
  const limit = grpc ? Math.min(transport.max_frame_bytes, transport.grpc_config.max_message_bytes) : transport.max_frame_bytes
  return limit - ENVELOPE_BYTES
}

/** A serving HTTP API. */
export interface HttpApi {
  /** The address actually bound, `host:port`. */
  readonly address: string
}

/** What the node saw on `RaftManager.events` since it started. */
export interface EventCounters {
  leaderChanges: number
  snapshotsTaken: number
  snapshotsInstalled: number
  lastSnapshotInstalled: { readonly index: number; readonly term: number; readonly from: NodeId; readonly bytes: number } | undefined
}

/** Subscribes to the manager's events for the life of the scope and counts them. */
export const trackEvents = (manager: RaftManagerService): Effect.Effect<EventCounters, never, Scope.Scope> =>
  Effect.gen(function*() {
    const counters: EventCounters = {
      leaderChanges: 0,
      snapshotsTaken: 0,
      snapshotsInstalled: 0,
      lastSnapshotInstalled: undefined
    }
    // A leader lost and found again (`leader` undefined in between) is not a change.
    let lastLeader: NodeId | undefined
    yield* Effect.forkScoped(
      Stream.runForEach(manager.events, (event) =>
        Effect.sync(() => {
          switch (event._tag) {
            case "LeaderChanged":
              if (event.leader !== undefined && event.leader !== lastLeader) {
                counters.leaderChanges++
                lastLeader = event.leader
              }
              return
            case "SnapshotTaken":
              counters.snapshotsTaken++
              return
            case "SnapshotInstalled":
              counters.snapshotsInstalled++
              counters.lastSnapshotInstalled = { index: event.index, term: event.term, from: event.from, bytes: event.bytes }
              return
            case "RoleChanged":
              return
          }
        })),
      { startImmediately: true }
    )
    return counters
  })

// -----------------------------------------------------------------------------
// Node metrics (next to the transport's on /metrics)
// -----------------------------------------------------------------------------

const termGauge = Metric.gauge("raft_node_term", { description: "Current Raft term of this node" })
const commitGauge = Metric.gauge("raft_node_commit_index", { description: "Highest log index known committed" })
const appliedGauge = Metric.gauge("raft_node_applied_index", { description: "Highest log index applied to the state machine" })
const snapshotGauge = Metric.gauge("raft_node_snapshot_index", { description: "Log index of the latest snapshot" })
const leaderGauge = Metric.gauge("raft_node_is_leader", { description: "1 while this node is the leader, else 0" })
const leaderChangesGauge = Metric.gauge("raft_node_leader_changes", {
  description: "Times this node saw a new leader since it started"
})
const snapshotsInstalledGauge = Metric.gauge("raft_node_snapshots_installed", {
  description: "Leader snapshots installed by this node since it started"
})
const HTTP_REQUESTS = "raft_node_http_requests_total"
const HTTP_REQUESTS_DESCRIPTION = "Client API requests answered, by method and status"
/**
 * One series per method and status, made once with its labels as attributes: a series made
 * with `Metric.withAttributes` per request recomputed its key (sorted entries, JSON) each time.
 */
const httpRequestSeries = new Map<string, Metric.Metric<number, unknown>>()
const httpRequestsSeries = (method: string, status: number): Metric.Metric<number, unknown> => {
  const key = `${method} ${status}`
  let series = httpRequestSeries.get(key)
  if (series === undefined) {
    series = Metric.counter(HTTP_REQUESTS, { description: HTTP_REQUESTS_DESCRIPTION, attributes: { method, status: String(status) } })
    httpRequestSeries.set(key, series)
  }
  return series
}

/** Sets the node gauges from the current status, just before a scrape renders them. */
const updateNodeGauges = (status: RaftStatus, counters: EventCounters) =>
  Effect.all([
    Metric.update(termGauge, status.term),
    Metric.update(commitGauge, status.commitIndex),
    Metric.update(appliedGauge, status.appliedIndex),
    Metric.update(snapshotGauge, status.snapshotIndex),
    Metric.update(leaderGauge, status.role === "leader" ? 1 : 0),
    Metric.update(leaderChangesGauge, counters.leaderChanges),
    Metric.update(snapshotsInstalledGauge, counters.snapshotsInstalled)
  ], { discard: true })

// -----------------------------------------------------------------------------
// Responses
// -----------------------------------------------------------------------------

const errorBody = (error: string, message: string, extra: Record<string, unknown> = {}) => ({ error, message, ...extra })

const methodNotAllowed = (method: string, path: string, allow: string) =>
  jsonReply(errorBody("method_not_allowed", `${method} ${path}`), 405, { allow })

/**
 * 413 for a PUT whose command cannot be carried. A body refused unread closes its connection
 * (`serveRequests`): the client may still be sending it, and draining it would cost as much as
 * reading it.
 */
const tooLarge = (message: string) => jsonReply(errorBody("too_large", message), 413)

/** The answer to an applied PUT or DELETE. */
const kvWritten = (node: NodeId, r: ApplyResult) =>
  r.ok
    ? jsonReply({ ok: true, op: r.op, key: r.key, previous: orNull(r.previous), node })
    : jsonReply(errorBody("rejected", r.error), 400)

type RaftError = NotLeader | NoQuorum | ProposalDropped

/** Voters this node has a connected link to (itself included), from the transport's link states. */
const connectedVoters = (transport: RaftTransportService, status: RaftStatus) =>
  Effect.map(transport.peers, (peers) => {
    const up = new Set<NodeId>([status.id])
    for (const p of peers) if (p.links.some((l) => l.state === "connected")) up.add(p.peer)
    return status.voters.filter((v) => up.has(v)).length
  })

/** What `GET /ready` answers. */
export interface Readiness {
  readonly ready: boolean
  readonly reason?: "no_leader" | "no_quorum"
  readonly role: RaftStatus["role"]
  readonly term: number
  readonly leader: NodeId | null
  /**
   * Voters this node has a live link to (itself included). On a follower it may be below a
   * quorum while ready: followers need no links to each other.
   */
  readonly reachable: number
  readonly voters: number
}

/**
 * Ready when a leader is known and a quorum is reachable. A leader counts the voters it has a
 * live link to (heartbeats keep every one of them in use). A follower cannot see the links
 * between other nodes, and needs none to followers: it counts itself and the leader when its
 * link to the leader is live, and takes the rest from the leader, which steps down when it
 * loses its quorum (check quorum), so a known leader has one.
 */
export const readiness = (status: RaftStatus, transport: RaftTransportService): Effect.Effect<Readiness> =>
  Effect.gen(function*() {
    const quorum = Math.floor(status.voters.length / 2) + 1
    const base = { role: status.role, term: status.term, leader: status.leader ?? null, voters: status.voters.length }
    if (status.leader === undefined) {
      return { ready: false, reason: "no_leader", reachable: yield* connectedVoters(transport, status), ...base }
    }
    if (status.leader === status.id) {
      const reachable = yield* connectedVoters(transport, status)
      return reachable >= quorum ? { ready: true, reachable, ...base } : { ready: false, reason: "no_quorum", reachable, ...base }
    }
    const peers = yield* transport.peers
    const leaderUp = peers.some((p) => p.peer === status.leader && p.links.some((l) => l.state === "connected"))
    const reachable = yield* connectedVoters(transport, status)
    return leaderUp ? { ready: true, reachable, ...base } : { ready: false, reason: "no_quorum", reachable, ...base }
  })

const errorResponse = (
  error: RaftError,
  transport: RaftTransportService,
  manager: RaftManagerService,
  waitedMs: number
): Effect.Effect<HttpReply> =>
  Effect.gen(function*() {
    switch (error._tag) {
      case "NoQuorum":
        return jsonReply(errorBody("no_quorum", error.message, { reachable: error.reachable, voters: error.voters }), 503)
      case "ProposalDropped":
        return jsonReply(errorBody("proposal_dropped", error.message), 503)
      case "NotLeader": {
        if (error.leader !== undefined) {
          return jsonReply(errorBody("not_leader", error.message, { leader: error.leader }), 503)
        }
        const status = yield* manager.status
        const connected = yield* connectedVoters(transport, status)
        const quorum = Math.floor(status.voters.length / 2) + 1
        if (connected < quorum) {
          return jsonReply(
            errorBody(
              "no_quorum",
              `no leader within ${waitedMs} ms: ${connected} of ${status.voters.length} voters connected, a majority needs ${quorum}`,
              { reachable: connected, voters: status.voters.length }
            ),
            503
          )
        }
        return jsonReply(errorBody("not_leader", error.message, { leader: null }), 503)
      }
    }
  })

// -----------------------------------------------------------------------------
// Status
// -----------------------------------------------------------------------------

const orNull = <A>(a: A | undefined): A | null => (a === undefined ? null : a)

const statusBody = (
  manager: RaftManagerService,
  transport: RaftTransportService,
  counters: EventCounters,
  httpAddress: string
) =>
  Effect.gen(function*() {
    const status = yield* manager.status
    const peers = yield* transport.peers
    const local = transport.localAddress()
    return {
      id: status.id,
      role: status.role,
      term: status.term,
      leader: orNull(status.leader),
      vote: orNull(status.vote),
      commitIndex: status.commitIndex,
      appliedIndex: status.appliedIndex,
      lastLogIndex: status.lastLogIndex,
      snapshotIndex: status.snapshotIndex,
      voters: status.voters,
      progress: status.peers,
      peers: [...peers].sort((a, b) => a.peer - b.peer).map((p) => ({
        id: p.peer,
        routes: Object.fromEntries(classNames.map((name, i) => [name, orNull(p.routes[i])])),
        links: p.links.map((l) => ({
          transport: l.transport,
          state: l.state,
          consecutiveFailures: l.consecutiveFailures,
          lastFailure: orNull(l.lastFailure),
          rttMs: orNull(l.rttMs),
          unconfirmed: l.unconfirmed
        })),
        queued: Object.fromEntries(classNames.map((name, i) => [name, p.queued[i] ?? 0]))
      })),
      events: {
        leaderChanges: counters.leaderChanges,
        snapshotsTaken: counters.snapshotsTaken,
        snapshotsInstalled: counters.snapshotsInstalled,
        lastSnapshotInstalled: orNull(counters.lastSnapshotInstalled)
      },
      address: {
        http: httpAddress,
        iroh: orNull(local.iroh),
        grpc: orNull(local.grpc?.address)
      }
    }
  })

/** The JSON of `GET /status`. */
export type StatusBody = Effect.Success<ReturnType<typeof statusBody>>

// -----------------------------------------------------------------------------
// Server
// -----------------------------------------------------------------------------

const KV_PREFIX = "/kv/"

const decodeKey = (raw: string): string | undefined => {
  try {
    const key = decodeURIComponent(raw)
    return key.length === 0 ? undefined : key
  } catch {
    return undefined
  }
}

/**
 * The longest budget a request may ask for. A request whose client went away stays pending
 * (its proposal or read, and their memory) until its deadline, so an unbounded one would let
 * abandoned requests pile up for good.
 */
export const MAX_REQUEST_TIMEOUT_MS = 300_000

const timeoutFrom = (params: URLSearchParams, fallback: number): number | string => {
  const raw = params.get("timeout_ms")
  if (raw === null) return fallback
  const n = Number(raw)
  return /^[0-9]+$/.test(raw) && n >= 1 && n <= MAX_REQUEST_TIMEOUT_MS
    ? n
    : `timeout_ms must be an integer from 1 to ${MAX_REQUEST_TIMEOUT_MS}, got ${JSON.stringify(raw)}`
}

/**
 * Serves the API on `options.bindAddress` until the scope closes. `counters` come from
 * `trackEvents` (started before anything else, so no event is missed).
 */
export const serveHttpApi = (
  options: HttpApiOptions,
  manager: RaftManagerService,
  transport: RaftTransportService,
  counters: EventCounters
): Effect.Effect<HttpApi, HttpApiStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const hp = splitHostPort(options.bindAddress)
    if (hp === undefined) {
      return yield* new HttpApiStartFailed({ address: options.bindAddress, reason: "expected \"host:port\"" })
    }
    // Counts and logs the connections the limits close, from the server's plain callbacks.
    const run = yield* FiberSet.makeRuntime<never, void, never>()
    const server = limitedHttpServer(options.limits ?? DEFAULT_HTTP_LIMITS, run)
    // The address actually bound, once bound (before that no request can arrive).
    let httpAddress = options.bindAddress

    /**
     * Runs a Raft request until it succeeds, fails for good, or the deadline passes. Only
     * failures that are known not to have taken effect are retried: `NotLeader` (no leader
     * yet, e.g. an election is running) and `ProposalDropped`.
     */
    const withLeader = Effect.fnUntraced(function*<A>(timeoutMs: number, attempt: (remainingMs: number) => Effect.Effect<A, RaftError>) {
      const start = yield* Clock.currentTimeMillis
      const deadline = start + timeoutMs
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const result = yield* Effect.result(attempt(Math.max(1, deadline - now)))
        if (Result.isSuccess(result)) return Result.succeed(result.success)
        const error = result.failure
        const retryable = error._tag === "NotLeader" ||
          (error._tag === "ProposalDropped" && error.reason !== "node stopped")
        const after = yield* Clock.currentTimeMillis
        if (!retryable || after + RETRY_MS >= deadline) {
          return Result.fail({ error, waitedMs: after - start })
        }
        yield* Effect.sleep(RETRY_MS)
      }
    })

    const respondRaft = <A>(
      timeoutMs: number,
      attempt: (remainingMs: number) => Effect.Effect<A, RaftError>,
      ok: (a: A) => HttpReply
    ) =>
      Effect.flatMap(withLeader(timeoutMs, attempt), (result) =>
        Result.isSuccess(result)
          ? Effect.succeed(ok(result.success))
          : errorResponse(result.failure.error, transport, manager, result.failure.waitedMs))

    // Made once: an `Effect.gen` closure per request would keep each request alive across
    // scavenges (docs/design.md, "No generator closure per batch").
    const route = Effect.fnUntraced(function*(request: HttpRequest) {
      const [path = "", query = ""] = request.url.split("?", 2)
      const params = new URLSearchParams(query)
      const method = request.method === "HEAD" ? "GET" : request.method

      if (path.startsWith(KV_PREFIX)) {
        const key = decodeKey(path.slice(KV_PREFIX.length))
        if (key === undefined) return jsonReply(errorBody("bad_request", "expected /kv/<key> with a non-empty, URL-encoded key"), 400)
        const timeoutMs = timeoutFrom(params, options.requestTimeoutMs)
        if (typeof timeoutMs === "string") return jsonReply(errorBody("bad_request", timeoutMs), 400)
        switch (method) {
          case "GET":
            return yield* respondRaft(
              timeoutMs,
              (remaining) => manager.read(key, { timeoutMs: remaining }),
              (value) => value === undefined ? jsonReply({ error: "not_found", key }, 404) : jsonReply({ key, value })
            )
          case "PUT": {
            // The command holds the value as JSON, never shorter than the body it came from, so
            // the server reads no body over `maxCommandBytes` (see `serveRequests`): buffering it
            // whole first would let one client hold gigabytes of the node's memory, and keep it
            // waiting for all of them.
            const tooLong = `one Raft message carries a command of at most ${options.maxCommandBytes} bytes`
            if (typeof request.body !== "string") return tooLarge(`${request.body.message}; ${tooLong}`)
            const command = encodeKvCommand({ op: "put", key, value: request.body })
            if (command.length > options.maxCommandBytes) {
              return tooLarge(`the command is ${command.length} bytes; ${tooLong}`)
            }
            return yield* respondRaft(timeoutMs, (remaining) => manager.propose(command, { timeoutMs: remaining }), (r) =>
              kvWritten(manager.id, r))
          }
          case "DELETE":
            return yield* respondRaft(timeoutMs, (remaining) => manager.delete(key, { timeoutMs: remaining }), (r) =>
              kvWritten(manager.id, r))
          default:
            return methodNotAllowed(request.method, path, "GET, HEAD, PUT, DELETE")
        }
      }

      if (path === "/status" || path === "/metrics" || path === "/health" || path === "/ready") {
        if (method !== "GET") return methodNotAllowed(request.method, path, "GET, HEAD")
        if (path === "/health") return textReply("ok\n")
        if (path === "/ready") {
          const ready = yield* readiness(yield* manager.status, transport)
          return jsonReply(ready, ready.ready ? 200 : 503)
        }
        if (path === "/metrics") {
          yield* updateNodeGauges(yield* manager.status, counters)
          return textReply(yield* renderPrometheus, PROMETHEUS_CONTENT_TYPE)
        }
        return jsonReply(yield* statusBody(manager, transport, counters, httpAddress))
      }
      return jsonReply(errorBody("not_found", `no route for ${request.method} ${path}`), 404)
    })

    yield* serveRequests(server, {
      maxBodyBytes: options.maxCommandBytes,
      answered: (method, status) => Metric.update(httpRequestsSeries(method, status), 1)
    }, route)
    httpAddress = yield* listen(server, hp.host, hp.port).pipe(
      Effect.mapError((error) => new HttpApiStartFailed({ address: options.bindAddress, reason: describeCause(error) }))
    )
    return { address: httpAddress }
  })
