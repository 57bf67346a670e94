import { Deferred, Effect, Queue, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import type { LocalAddress } from "../../src/domain/raft-transport.ts"

const script = (name: string) => fileURLToPath(new URL(`./${name}.ts`, import.meta.url))

export interface Received {
  readonly from: number
  readonly type: number
  readonly index: number
  readonly commit: number
}

export interface ChildNode {
  readonly process: ChildProcess
  readonly address: LocalAddress
  readonly received: Queue.Queue<Received>
  /** Every other JSON line the child printed. */
  readonly lines: Queue.Queue<Record<string, unknown>>
  /** Completes once the child's stdout has closed: every line it printed has been read. */
  readonly outputEnded: Effect.Effect<void>
  /** SIGTERM (graceful: the endpoint closes its connections) or SIGKILL (the path goes dark). */
  readonly stop: (signal: "SIGTERM" | "SIGKILL") => Effect.Effect<void>
}

/**
 * Starts `test/support/echo-node.ts` (or another node script there, given `args` after the
 * transport table) in a child process; killed when the scope closes.
 */
export const spawnChildNode = (
  transportTable: Record<string, unknown>,
  options: { readonly script?: string; readonly args?: ReadonlyArray<string> } = {}
): Effect.Effect<ChildNode, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        // `--import tsx` rather than the tsx CLI: one process, so SIGKILL really kills the node.
        spawn(process.execPath, ["--import", "tsx", script(options.script ?? "echo-node"), JSON.stringify(transportTable), ...(options.args ?? [])], {
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (c) => Effect.sync(() => void (c.exitCode === null && c.kill("SIGKILL")))
    )
    const exited = yield* Deferred.make<void>()
    const outputEnded = yield* Deferred.make<void>()
    child.stdout!.once("close", () => Deferred.doneUnsafe(outputEnded, Effect.void))
    child.once("exit", () => Deferred.doneUnsafe(exited, Effect.void))
    const ready = yield* Deferred.make<LocalAddress, Error>()
    const received = yield* Queue.unbounded<Received>()
    const lines = yield* Queue.unbounded<Record<string, unknown>>()
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)))
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return
      const parsed = JSON.parse(line) as { ready?: LocalAddress; received?: Received }
      if (parsed.ready !== undefined) Deferred.doneUnsafe(ready, Effect.succeed(parsed.ready))
      else if (parsed.received !== undefined) Queue.offerUnsafe(received, parsed.received)
      else Queue.offerUnsafe(lines, parsed)
    })
    child.once("exit", (code) => Deferred.doneUnsafe(ready, Effect.fail(new Error(`child exited (${code}): ${stderr}`))))
    const address = yield* Deferred.await(ready).pipe(
      Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.fail(new Error(`child not ready: ${stderr}`)) })
    )
    return {
      process: child,
      address,
      received,
      lines,
      outputEnded: Deferred.await(outputEnded),
      stop: (signal) =>
        Effect.suspend(() => {
          if (child.exitCode !== null) return Effect.void
          child.kill(signal)
          return Deferred.await(exited)
        })
    }
  })
