#!/usr/bin/env node
/**
 * The node process: a Raft key-value node serving the client HTTP API.
 *
 *   raft-node run --config node1.toml [--log-level info]
 *   raft-node keygen --key-file node1.key [--address 127.0.0.1:4001 ...]
 *   raft-node --help | --version
 *
 * (`npm run node -- ...` in the repository.)
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
import iroh from "../iroh/native.ts"
import { Data, Effect, Logger, type LogLevel, References, Schema } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { SocketAddress } from "../config/schema.ts"
import { endpointIdOf, loadOrCreateSecretKey } from "../iroh/identity.ts"
import { loadNodeConfigFile } from "./node-config.ts"
import { applyProcessScheduling } from "./process-scheduling.ts"
import { startNode } from "./run.ts"

const { EndpointAddr, EndpointId, EndpointTicket } = iroh

const USAGE = `usage:
  raft-node run --config <file> [--log-level trace|debug|info|warn|error]
      runs a Raft key-value node from a TOML file ([transport], [raft], [http] tables)
  raft-node keygen --key-file <file> [--address ip:port ...]
      creates the node's Iroh key file if absent; prints its endpoint id and ticket
  raft-node --help | --version`

/** The package's version; package.json is two levels up from both src/node and dist/node. */
const version = (): string => {
  const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"))
  return typeof manifest === "object" && manifest !== null && "version" in manifest ? String(manifest.version) : "unknown"
}

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
    yield* applyProcessScheduling(config.process.scheduling)
    const node = yield* startNode(config)
    const local = node.transport.localAddress()
    yield* printLine({
      ready: {
        id: node.transport.nodeId,
        http: node.http.address,
        iroh: local.iroh ?? null,
        grpc: local.grpc?.address ?? null
      }
    })
    yield* Effect.logInfo(`node ${node.transport.nodeId} serving HTTP on ${node.http.address}`)
    // Fail-stop: a storage failure stops the Raft node, and with it the process (exit code 1),
    // instead of an API that answers /health but refuses every request.
    return yield* node.manager.done.pipe(
      Effect.onInterrupt(() => Effect.logInfo(`node ${node.transport.nodeId} shutting down`))
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
  if (command === "--version" || command === "-v" || command === "version") {
    return yield* Effect.sync(() => void process.stdout.write(`raft-node ${version()}\n`))
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
