/**
 * Node processes (`src/node/main.ts run`) as direct children, so SIGKILL really kills the
 * node; each is killed when the scope it was started in closes.
 */
import { ClusterError } from "./errors.ts"
import { Deferred, Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, openSync, readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import type { NodeSpec } from "./configs.ts"
import { describeCause } from "../../domain/errors.ts"
import { nodeV8Flags } from "../v8-flags.ts"

/** From source (`.ts`) the node runs under tsx; from dist/ it is plain JavaScript. */
const FROM_SOURCE = import.meta.url.endsWith(".ts")
const MAIN = fileURLToPath(new URL(FROM_SOURCE ? "../main.ts" : "../main.js", import.meta.url))
/** The package root: `--import tsx` resolves from here. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url))

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
export const spawnNode = (
  spec: NodeSpec,
  logLevel = "info",
  nodeFlags: ReadonlyArray<string> = []
): Effect.Effect<NodeProcess, ClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const log = openSync(spec.logFile, "a")
          try {
            return spawn(
              process.execPath,
              [...nodeV8Flags(), ...nodeFlags, ...(FROM_SOURCE ? ["--import", "tsx"] : []), MAIN, "run", "--config", spec.configFile, "--log-level", logLevel],
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
