import { Data } from "effect"

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Dotted field path, e.g. `transport.peers[1].grpc_address`; `<toml>` / `<file>` for syntax and I/O problems. */
  readonly path: string
  /** What is wrong, e.g. `Expected an integer greater than or equal to 1, got 0`. */
  readonly message: string
}

/**
 * A configuration could not be read, parsed or decoded.
 *
 * - `path`: the dotted field path of the first issue (`transport.strategy.raft_transport`,
 *   `transport.peers[1].grpc_address`), `<toml>` for a TOML syntax error, `<file>` when the
 *   file cannot be read.
 * - `message`: one line per issue, `"<path>: <what was expected>"`, e.g.
 *   `transport.batching.max_batch: Expected an integer greater than or equal to 1, got 0`.
 *   With a single issue it is exactly that line.
 * - `issues`: every issue found (decoding collects all of them, not just the first).
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly path: string
  readonly message: string
  readonly issues: ReadonlyArray<ConfigIssue>
}> {
  /** Builds the error from its issues (at least one); `path` and `message` are derived. */
  static fromIssues(issues: readonly [ConfigIssue, ...Array<ConfigIssue>]): ConfigError {
    return new ConfigError({
      path: issues[0].path,
      message: issues.map((i) => `${i.path}: ${i.message}`).join("\n"),
      issues
    })
  }

  /** A single-issue error. */
  static single(path: string, message: string): ConfigError {
    return ConfigError.fromIssues([{ path, message }])
  }
}
