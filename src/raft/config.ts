/**
 * The `[raft]` table of a node's TOML file as an Effect Schema: timing, replication limits,
 * snapshotting, storage and the (static) voter set. Field names are the TOML snake_case names.
 *
 * Decode it with `decodeRaftConfig` (from any JS value, e.g. `smol-toml`'s `parse(text).raft`)
 * or `parseRaftConfigToml` (whole TOML document). Failures are the transport's `ConfigError`,
 * with paths rooted at `raft` (`raft.voters[1]`).
 */
import { Effect, Schema } from "effect"
import { ConfigError } from "../config/errors.ts"
import { intAtLeast, NonEmptyString, orDefault, table } from "../config/fields.ts"
import { configErrorOf, parseTomlDocument, readConfigText } from "../config/load.ts"

/**
 * When appended entries reach the disk:
 * - `always`: fsync after every write (each log record, each hard-state / snapshot file);
 * - `batch`: one fsync per batch of appended entries, before the node acknowledges them;
 * - `never`: leave it to the OS (fast, loses acknowledged writes on power failure: tests only).
 */
/** When storage makes writes durable (`sync` in `[raft]`). */
export const SyncPolicy = Schema.Literals(["always", "batch", "never"])
export type SyncPolicy = typeof SyncPolicy.Type

/** Node ids are unsigned integers; 0 means "none" in Raft messages (as in etcd/raft). */
const VoterId = intAtLeast(1)

const raftFields = {
  election_timeout_min_ms: orDefault(intAtLeast(1), 300),
  election_timeout_max_ms: orDefault(intAtLeast(1), 600),
  heartbeat_interval_ms: orDefault(intAtLeast(1), 100),
  /**
   * Unacknowledged appends per follower. One: what arrives while an append is out goes in the
   * next, as one message, once the follower answered. More pipelines appends, which pays only
   * where more proposals than one append carries (`max_entries_per_append`, `max_append_bytes`)
   * wait at once (docs/design.md, "One append in flight per follower").
   */
  max_inflight_appends: orDefault(intAtLeast(1), 1),
  max_entries_per_append: orDefault(intAtLeast(1), 256),
  /**
   * Payload bytes (entry data and context) one append may carry; an entry larger than this
   * still goes alone. Keeps a catching-up follower's appends under the transport's frame limit.
   */
  max_append_bytes: orDefault(intAtLeast(1), 1024 * 1024),
  /**
   * Applied entries since the last snapshot that trigger a new snapshot + log compaction. A
   * snapshot costs in proportion to the state, not to the entries: sorting and encoding the
   * whole map, writing it and the log's rewrite with five fsyncs, while the node's writes wait.
   * At 1,000 a 64-client load snapshotted every node about once a second (bench/README.md).
   */
  snapshot_threshold: orDefault(intAtLeast(1), 10_000),
  /**
   * Payload bytes (entry data and context) applied since the last snapshot that trigger one
   * too: the log lives in memory until compacted, so entries of a few MiB each must not wait
   * for `snapshot_threshold` of them.
   */
  snapshot_threshold_bytes: orDefault(intAtLeast(1), 64 * 1024 * 1024),
  /** Absent: in-memory storage (state is lost when the process exits). */
  data_dir: Schema.optionalKey(NonEmptyString),
  sync: orDefault(SyncPolicy, "batch"),
  pre_vote: orDefault(Schema.Boolean, true),
  /** Static membership: every voter's node id, this node's included. */
  voters: Schema.Array(VoterId),
  /** Default time a proposal or read may take before it fails with `NoQuorum`. */
  proposal_timeout_ms: orDefault(intAtLeast(1), 5000),
  /** A snapshot send that is not acknowledged within this time is retried. */
  snapshot_timeout_ms: orDefault(intAtLeast(1), 60_000)
}

type Fields = Schema.Struct.Type<typeof raftFields>

const rules = (c: Fields): Array<Schema.FilterIssue> => {
  const issues: Array<Schema.FilterIssue> = []
  if (c.election_timeout_max_ms <= c.election_timeout_min_ms) {
    issues.push({
      path: ["election_timeout_max_ms"],
      issue:
        `Expected a value greater than election_timeout_min_ms (${c.election_timeout_min_ms}), got ${c.election_timeout_max_ms}`
    })
  }
  // §5.6: broadcastTime << electionTimeout, or followers time out between heartbeats.
  if (c.heartbeat_interval_ms >= c.election_timeout_min_ms) {
    issues.push({
      path: ["heartbeat_interval_ms"],
      issue:
        `Expected a value less than election_timeout_min_ms (${c.election_timeout_min_ms}), got ${c.heartbeat_interval_ms}`
    })
  }
  if (c.voters.length === 0) issues.push({ path: ["voters"], issue: "Expected at least one voter" })
  const seen = new Set<number>()
  c.voters.forEach((id, i) => {
    if (seen.has(id)) issues.push({ path: ["voters", i], issue: `Duplicate voter id ${id}` })
    seen.add(id)
  })
  return issues
}

/** The decoded `[raft]` table: timing, batching, snapshots, storage and the voters. */
export const RaftConfig = table(raftFields).check(Schema.makeFilter(rules))
export type RaftConfig = typeof RaftConfig.Type
/** What `decodeRaftConfig` accepts: the `[raft]` table's shape (only `voters` is required). */
export type RaftConfigEncoded = typeof RaftConfig.Encoded

const ROOT = "raft"

const decode = Schema.decodeUnknownEffect(RaftConfig)

/** Decodes a JS value shaped like the `[raft]` table; unknown keys are errors, all issues collected. */
export const decodeRaftConfig = (input: unknown): Effect.Effect<RaftConfig, ConfigError> =>
  decode(input, { errors: "all", onExcessProperty: "error" }).pipe(Effect.mapError((error) => configErrorOf(error, ROOT)))

/** Parses a whole TOML document and decodes its `[raft]` table. */
export const parseRaftConfigToml = (text: string): Effect.Effect<RaftConfig, ConfigError> =>
  parseTomlDocument(text).pipe(
    Effect.flatMap((doc) =>
      doc[ROOT] === undefined ? Effect.fail(ConfigError.single(ROOT, "Missing [raft] table")) : decodeRaftConfig(doc[ROOT])
    )
  )

/** Reads a TOML file (UTF-8) and decodes its `[raft]` table. */
export const loadRaftConfigFile = (path: string): Effect.Effect<RaftConfig, ConfigError> =>
  readConfigText(path).pipe(Effect.flatMap(parseRaftConfigToml))
