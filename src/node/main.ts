/**
 * The node process: a Raft key-value node serving the client HTTP API.
 *
 *   tsx src/node/main.ts run --config node1.toml [--log-level info]
 *   tsx src/node/main.ts keygen --key-file node1.key [--address 127.0.0.1:4001 ...]
 *
 * `run` starts the transport, the Raft manager and the HTTP API in one scope and prints one
 * JSON line to stdout once serving:
 *
 *   {"ready":{"id":1,"http":"127.0.0.1:8081","iroh":{"endpointId","addresses","ticket"}|null,"grpc":"127.0.0.1:9001"|null}}
 *
 * Logs go to stderr (logfmt). SIGINT / SIGTERM close the scope: the HTTP server, the Raft
 * node and the transport stop in reverse order.
 *
 * `keygen` creates the key file (mode 0600) if absent and prints
 * `{"keyFile","created","endpointId","ticket"}`; the ticket carries the `--address`es.
 *
 * Exit codes: 0 done, 1 startup failure or a storage failure while running (the reason is
 * printed on stderr), 2 usage error, 3 a stored snapshot that does not restore (an operator
 * must recover the node, docs/node.md), 130 after SIGINT / SIGTERM.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import iroh from "@number0/iroh"
import { Data, Effect, Logger, type LogLevel, References, Schema } from "effect"
import { existsSync } from "node:fs"
import { SocketAddress } from "../config/schema.ts"
import { endpointIdOf, loadOrCreateSecretKey } from "../iroh/identity.ts"
import { KvStateMachine } from "../raft/kv-state-machine.ts"
import { makeRaftManager, storageFor } from "../raft/manager.ts"
import { RaftTransport } from "../domain/raft-transport.ts"
import { makeRaftTransport } from "../transport/service.ts"
import { maxCommandBytes, serveHttpApi, trackEvents } from "./http-api.ts"
import { httpLimitsOf, loadNodeConfigFile } from "./node-config.ts"

const { EndpointAddr, EndpointId, EndpointTicket } = iroh

const USAGE = `usage:
  raft-node run --config <file> [--log-level trace|debug|info|warn|error]
  raft-node keygen --key-file <file> [--address ip:port ...]`

/** Exit code of a node whose stored state it cannot start from: restarting cannot help. */
const EXIT_NEEDS_OPERATOR = 3

class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** Every value given per flag name, in order. */
type Flags = ReadonlyMap<string, ReadonlyArray<string>>

const parseFlags = (args: ReadonlyArray<string>, known: ReadonlyArray<string>): Flags | UsageError => {
  const values = new Map<string, Array<string>>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (!arg.startsWith("--")) return new UsageError({ message: `unexpected argument ${JSON.stringify(arg)}` })
    const eq = arg.indexOf("=")
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq)
    if (!known.includes(name)) return new UsageError({ message: `unknown option --${name}` })
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1)
    if (value === undefined || value.length === 0) return new UsageError({ message: `--${name} needs a value` })
    values.set(name, [...(values.get(name) ?? []), value])
  }
  return values
}

const single = (flags: Flags, name: string): string | undefined => flags.get(name)?.at(-1)

const LOG_LEVELS: Record<string, LogLevel.LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  none: "None"
}

const printLine = (value: unknown) => Effect.sync(() => void process.stdout.write(`${JSON.stringify(value)}\n`))

/** `run`: transport + Raft manager + HTTP API in one scope, until interrupted. */
const run = (configFile: string) =>
  Effect.gen(function*() {
    const config = yield* loadNodeConfigFile(configFile)
    const transport = yield* makeRaftTransport(config.transport)
    const storage = yield* storageFor(config.raft)
    const manager = yield* makeRaftManager(config.raft, new KvStateMachine(), storage).pipe(
      Effect.provideService(RaftTransport, transport)
    )
    const counters = yield* trackEvents(manager)
    const http = yield* serveHttpApi(
      {
        bindAddress: config.http.bind_address,
        requestTimeoutMs: config.http.request_timeout_ms ?? config.raft.proposal_timeout_ms,
        maxCommandBytes: maxCommandBytes(config.transport),
        limits: httpLimitsOf(config.http)
      },
      manager,
      transport,
      counters
    )
    const local = transport.localAddress()
    yield* printLine({
      ready: {
        id: transport.nodeId,
        http: http.address,
        iroh: local.iroh ?? null,
        grpc: local.grpc?.address ?? null
      }
    })
    yield* Effect.logInfo(`node ${transport.nodeId} serving HTTP on ${http.address}`)
    // Fail-stop: a storage failure stops the Raft node, and with it the process (exit code 1),
    // instead of an API that answers /health but refuses every request.
    return yield* manager.done.pipe(
      Effect.onInterrupt(() => Effect.logInfo(`node ${transport.nodeId} shutting down`))
    )
  }).pipe(Effect.scoped)

const isSocketAddress = Schema.is(SocketAddress)

/** `keygen`: the key file (created if absent), its endpoint id and a ticket with the given addresses. */
const keygen = (keyFile: string, addresses: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const bad = addresses.find((address) => !isSocketAddress(address))
    if (bad !== undefined) {
      return yield* new UsageError({ message: `--address expects ip:port (IPv4, or [IPv6]:port), got ${JSON.stringify(bad)}` })
    }
    const created = !existsSync(keyFile)
    const key = yield* loadOrCreateSecretKey(keyFile)
    const endpointId = endpointIdOf(key)
    const ticket = EndpointTicket.fromAddr(new EndpointAddr(EndpointId.fromString(endpointId), null, [...addresses])).toString()
    yield* printLine({ keyFile, created, endpointId, ticket })
  })

const main = Effect.gen(function*() {
  const [command, ...rest] = process.argv.slice(2)
  if (command === "run") {
    const flags = parseFlags(rest, ["config", "log-level"])
    if (flags instanceof UsageError) return yield* flags
    const configFile = single(flags, "config")
    if (configFile === undefined) return yield* new UsageError({ message: "run needs --config <file>" })
    const levelName = (single(flags, "log-level") ?? process.env["RAFT_NODE_LOG_LEVEL"] ?? "info").toLowerCase()
    const level = LOG_LEVELS[levelName]
    if (level === undefined) return yield* new UsageError({ message: `unknown log level ${JSON.stringify(levelName)}` })
    return yield* run(configFile).pipe(Effect.provideService(References.MinimumLogLevel, level))
  }
  if (command === "keygen") {
    const flags = parseFlags(rest, ["key-file", "address"])
    if (flags instanceof UsageError) return yield* flags
    const keyFile = single(flags, "key-file")
    if (keyFile === undefined) return yield* new UsageError({ message: "keygen needs --key-file <file>" })
    return yield* keygen(keyFile, flags.get("address") ?? [])
  }
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    return yield* Effect.sync(() => void process.stdout.write(`${USAGE}\n`))
  }
  return yield* new UsageError({ message: `unknown command ${JSON.stringify(command)}` })
}).pipe(
  Effect.catchTag("UsageError", (error) =>
    Effect.sync(() => {
      process.stderr.write(`raft-node: ${error.message}\n${USAGE}\n`)
      process.exitCode = 2
    })),
  // Startup failures (config, key file, ports, storage) and a Raft node stopped by a storage
  // failure: one clear line, exit code 1. A stored snapshot that does not restore fails the
  // same way at every start: exit code 3 tells a supervisor not to restart (docs/node.md).
  Effect.catch((error) =>
    Effect.sync(() => {
      process.stderr.write(`raft-node: ${error.message}\n`)
      process.exitCode = error._tag === "SnapshotUnusable" ? EXIT_NEEDS_OPERATOR : 1
    }))
)

// Logs go to stderr: stdout carries only the JSON lines above.
const StderrLogger = Logger.layer([Logger.withConsoleError(Logger.formatLogFmt)])

NodeRuntime.runMain(main.pipe(Effect.provide(StderrLogger)))
