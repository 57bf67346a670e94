/**
 * Reading a `TransportConfig`: from TOML text, from a TOML file, or from an object built in
 * code. Every failure is a `ConfigError` whose issues name the field path.
 */
import { readFile } from "node:fs/promises"
import { Effect, Schema, SchemaIssue } from "effect"
import { parse, TomlError } from "smol-toml"
import { ConfigError, type ConfigIssue } from "./errors.ts"
import { TransportConfig, type TransportConfigEncoded } from "./schema.ts"
import { describeCause } from "../domain/errors.ts"

/** The root of every field path: the `[transport]` table. */
const ROOT = "transport"

const parseOptions = {
  errors: "all",
  onExcessProperty: "error",
  reportInput: true
} as const

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/

/** `["peers", 1, "grpc_address"]` -> `transport.peers[1].grpc_address` (or under another table). */
export const formatConfigPath = (path: ReadonlyArray<unknown>, root: string = ROOT): string => {
  let out = root
  for (const segment of path) {
    const key = typeof segment === "object" && segment !== null && "key" in segment ? segment.key : segment
    if (typeof key === "number") out += `[${key}]`
    else if (typeof key === "string" && IDENT.test(key)) out += `.${key}`
    else out += `[${JSON.stringify(String(key))}]`
  }
  return out
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** A decoding failure of the table `root` as a `ConfigError` with one issue per field. */
export const configErrorOf = (error: Schema.SchemaError, root: string = ROOT): ConfigError => {
  const issues: Array<ConfigIssue> = formatter(error.issue).issues.map((issue) => ({
    path: formatConfigPath(issue.path ?? [], root),
    message: issue.message
  }))
  const [first, ...rest] = issues
  return first === undefined
    ? ConfigError.single(root, error.message)
    : ConfigError.fromIssues([first, ...rest])
}

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/**
 * Drops keys whose value is `undefined` (recursively through plain objects and arrays), so a
 * config built in code may write `{ token: undefined }` for "absent", as TOML cannot.
 */
const dropUndefined = (u: unknown): unknown => {
  if (Array.isArray(u)) return u.map(dropUndefined)
  if (!isPlainObject(u)) return u
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(u)) {
    if (v !== undefined) out[k] = dropUndefined(v)
  }
  return out
}

const decode = Schema.decodeUnknownEffect(TransportConfig)

/**
 * Decodes a JS object shaped like the `[transport]` table (snake_case keys, TOML value forms
 * such as `relay_mode = { custom = [...] }`) into a fully populated `TransportConfig`.
 * Unknown keys are errors; all issues are collected.
 */
export const decodeTransportConfig = (input: unknown): Effect.Effect<TransportConfig, ConfigError> =>
  decode(dropUndefined(input), parseOptions).pipe(Effect.mapError((error) => configErrorOf(error)))

/**
 * Typed convenience for configs built in code: the argument is the `[transport]` table's
 * shape (only `node_id` is required). Same as `decodeTransportConfig`, and also an Effect.
 */
export const makeConfig = (partial: TransportConfigEncoded): Effect.Effect<TransportConfig, ConfigError> =>
  decodeTransportConfig(partial)

const tomlSyntaxError = (error: unknown): ConfigError => {
  if (error instanceof TomlError) {
    const reason = error.message.replace(/^Invalid TOML document:\s*/, "").split("\n")[0] ?? error.message
    return ConfigError.single("<toml>", `line ${error.line}, column ${error.column}: ${reason}`)
  }
  return ConfigError.single("<toml>", describeCause(error))
}

/** A TOML document as plain data; a syntax error names the line and column. */
export const parseTomlDocument = (text: string): Effect.Effect<Record<string, unknown>, ConfigError> =>
  Effect.try({ try: () => parse(text), catch: tomlSyntaxError })

/** A config file's text; a missing or unreadable file is a `ConfigError` at `<file>`. */
export const readConfigText = (path: string): Effect.Effect<string, ConfigError> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (error) => {
      const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined
      return ConfigError.single(
        "<file>",
        code === "ENOENT"
          ? `Config file not found: ${path}`
          : `Cannot read config file ${path}: ${describeCause(error)}`
      )
    }
  })

/**
 * Parses a whole TOML document and decodes its `[transport]` table. Other top-level tables
 * (`[raft]`, `[http]`, ...) are ignored. A syntax error is a `ConfigError` with path
 * `"<toml>"` and smol-toml's line and column.
 */
export const parseConfigToml = (text: string): Effect.Effect<TransportConfig, ConfigError> =>
  parseTomlDocument(text).pipe(
    Effect.flatMap((doc) =>
      doc[ROOT] === undefined
        ? Effect.fail(ConfigError.single(ROOT, "Missing [transport] table"))
        : decodeTransportConfig(doc[ROOT])
    )
  )

/** Reads a TOML file (UTF-8) and decodes its `[transport]` table, as `parseConfigToml`. */
export const loadConfigFile = (path: string): Effect.Effect<TransportConfig, ConfigError> =>
  readConfigText(path).pipe(Effect.flatMap(parseConfigToml))
