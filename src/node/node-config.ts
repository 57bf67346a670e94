/**
 * A node's TOML file: the transport (`[transport]`), the Raft node (`[raft]`) and the client
 * HTTP API (`[http]`), decoded together. Every failure is a `ConfigError` whose issues name the
 * field (`transport.peers[1].grpc_address`, `raft.voters`, `http.bind_address`); issues from all
 * three tables are collected into one error.
 *
 * ```toml
 * [transport]
 * node_id = 1
 * mode = "iroh"
 * iroh_config = { key_file = "node1.key", relay_mode = "disabled" }
 * peers = [{ id = 2, iroh_endpoint_id = "…", iroh_addresses = ["127.0.0.1:4102"] }]
 *
 * [raft]
 * voters = [1, 2]
 * data_dir = "data/node1"
 *
 * [http]
 * bind_address = "127.0.0.1:8081"
 *
 * [process]
 * scheduling = "batch"
 * ```
 */
import { Effect, Result, Schema } from "effect"
import { ConfigError, type ConfigIssue } from "../config/errors.ts"
import { intAtLeast, intBetween, orDefault, table } from "../config/fields.ts"
import { configErrorOf, decodeTransportConfig, parseTomlDocument, readConfigText } from "../config/load.ts"
import { BindAddress, type TransportConfig } from "../config/schema.ts"
import { decodeRaftConfig, type RaftConfig } from "../raft/config.ts"
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from "./http-limits.ts"

/** Node's timers take at most 2^31 - 1 ms; a longer one would fire at once. */
const TimeoutMs = intBetween(1, 2_147_483_647)

const httpFields = {
  /** Where the client API listens; port 0 picks a free port (the `ready` line tells which). */
  bind_address: orDefault(BindAddress, "127.0.0.1:0"),
  /**
   * How long a request may take, waiting for a leader included. Absent: `raft.proposal_timeout_ms`.
   * A request's `?timeout_ms=` overrides it.
   */
  request_timeout_ms: Schema.optionalKey(intAtLeast(1)),
  /** The request line and headers must arrive within this (`http-limits.ts`). */
  header_timeout_ms: orDefault(TimeoutMs, DEFAULT_HTTP_LIMITS.headerTimeoutMs),
  /** The whole request, body included, must arrive within this. */
  body_timeout_ms: orDefault(TimeoutMs, DEFAULT_HTTP_LIMITS.bodyTimeoutMs),
  /** A kept-alive connection with no request is closed after this. */
  idle_timeout_ms: orDefault(TimeoutMs, DEFAULT_HTTP_LIMITS.idleTimeoutMs),
  /** Connections beyond this are closed on accept. */
  max_connections: orDefault(intAtLeast(1), DEFAULT_HTTP_LIMITS.maxConnections)
}

// Node refuses a header timeout longer than the request timeout, which includes it.
const httpRules = (c: Schema.Struct.Type<typeof httpFields>): Array<Schema.FilterIssue> =>
  c.body_timeout_ms < c.header_timeout_ms
    ? [{
      path: ["body_timeout_ms"],
      issue: `Expected a value at least header_timeout_ms (${c.header_timeout_ms}), got ${c.body_timeout_ms}`
    }]
    : []

/** The `[http]` table. */
export const HttpConfig = table(httpFields).check(Schema.makeFilter(httpRules))
export type HttpConfig = typeof HttpConfig.Type

/** The API's limits as the `[http]` table sets them. */
export const httpLimitsOf = (http: HttpConfig): HttpLimits => ({
  headerTimeoutMs: http.header_timeout_ms,
  bodyTimeoutMs: http.body_timeout_ms,
  idleTimeoutMs: http.idle_timeout_ms,
  maxConnections: http.max_connections
})

/**
 * `[process]`: what the node asks of the operating system for its own process.
 * `scheduling`: `"batch"` runs every thread of the process as Linux's `SCHED_BATCH` (a thread
 * woken by a packet or a finished write does not preempt the thread on its core; the share of
 * the CPU is unchanged), `"inherit"` leaves the process as it was started (docs/node.md).
 */
export const ProcessConfig = table({
  scheduling: orDefault(Schema.Literals(["batch", "inherit"]), "batch")
})
export type ProcessConfig = typeof ProcessConfig.Type

/** A node's whole TOML file: its `[transport]`, `[raft]`, `[http]` and `[process]` tables, decoded. */
export interface NodeConfig {
  readonly transport: TransportConfig
  readonly raft: RaftConfig
  readonly http: HttpConfig
  readonly process: ProcessConfig
}

const TABLES = ["transport", "raft", "http", "process"] as const

/** Decodes a JS value shaped like the `[http]` table (absent: every default). */
export const decodeHttpConfig = (input: unknown): Effect.Effect<HttpConfig, ConfigError> =>
  Schema.decodeUnknownEffect(HttpConfig)(input ?? {}, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => configErrorOf(error, "http"))
  )

/** Decodes a JS value shaped like the `[process]` table (absent: every default). */
export const decodeProcessConfig = (input: unknown): Effect.Effect<ProcessConfig, ConfigError> =>
  Schema.decodeUnknownEffect(ProcessConfig)(input ?? {}, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => configErrorOf(error, "process"))
  )

const issuesOf = <A>(result: Result.Result<A, ConfigError>): ReadonlyArray<ConfigIssue> =>
  Result.isFailure(result) ? result.failure.issues : []

/** Rules that span the tables: this node is a voter, and every other voter has a peer entry. */
const crossChecks = (config: NodeConfig): Array<ConfigIssue> => {
  const issues: Array<ConfigIssue> = []
  const self = config.transport.node_id
  if (!config.raft.voters.includes(self)) {
    issues.push({
      path: "raft.voters",
      message: `Expected the voters to include this node's id ${self} (transport.node_id), got [${config.raft.voters.join(", ")}]`
    })
  }
  if (config.transport.enabled) {
    const known = new Set(config.transport.peers.map((p) => p.id))
    for (const voter of config.raft.voters) {
      if (voter !== self && !known.has(voter)) {
        issues.push({ path: "transport.peers", message: `Voter ${voter} (raft.voters) has no entry in transport.peers` })
      }
    }
  }
  return issues
}

/** Decodes a parsed TOML document (a plain object) into a node config. */
export const decodeNodeConfig = (doc: Record<string, unknown>): Effect.Effect<NodeConfig, ConfigError> =>
  Effect.gen(function*() {
    const unknownTables: Array<ConfigIssue> = Object.keys(doc)
      .filter((key) => !(TABLES as ReadonlyArray<string>).includes(key))
      .map((key) => ({ path: key, message: `Unknown table; expected one of: ${TABLES.join(", ")}` }))
    const transport = yield* Effect.result(
      doc["transport"] === undefined
        ? Effect.fail(ConfigError.single("transport", "Missing [transport] table"))
        : decodeTransportConfig(doc["transport"])
    )
    const raft = yield* Effect.result(
      doc["raft"] === undefined ? Effect.fail(ConfigError.single("raft", "Missing [raft] table")) : decodeRaftConfig(doc["raft"])
    )
    const http = yield* Effect.result(decodeHttpConfig(doc["http"]))
    const processTable = yield* Effect.result(decodeProcessConfig(doc["process"]))
    const issues = [...unknownTables, ...issuesOf(transport), ...issuesOf(raft), ...issuesOf(http), ...issuesOf(processTable)]
    if (
      Result.isSuccess(transport) && Result.isSuccess(raft) && Result.isSuccess(http) && Result.isSuccess(processTable) &&
      issues.length === 0
    ) {
      const config: NodeConfig = { transport: transport.success, raft: raft.success, http: http.success, process: processTable.success }
      issues.push(...crossChecks(config))
      if (issues.length === 0) return config
    }
    const [first, ...rest] = issues
    return yield* (first === undefined ? ConfigError.single("<toml>", "Invalid node config") : ConfigError.fromIssues([first, ...rest]))
  })

/** Parses a node's whole TOML document. */
export const parseNodeConfigToml = (text: string): Effect.Effect<NodeConfig, ConfigError> =>
  parseTomlDocument(text).pipe(Effect.flatMap(decodeNodeConfig))

/** Reads and decodes a node's TOML file. */
export const loadNodeConfigFile = (path: string): Effect.Effect<NodeConfig, ConfigError> =>
  readConfigText(path).pipe(Effect.flatMap(parseNodeConfigToml))
