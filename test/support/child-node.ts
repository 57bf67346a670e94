import { Deferred, Effect, Queue, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import type { LocalAddress } from "../../src/domain/raft-transport.ts"

const entry = fileURLToPath(new URL("./echo-node.ts", import.meta.url))

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
  /** SIGTERM (graceful: the endpoint closes its connections) or SIGKILL (the path goes dark). */
  readonly stop: (signal: "SIGTERM" | "SIGKILL") => Effect.Effect<void>
}

/** Starts `test/support/echo-node.ts` in a child process; killed when the scope closes. */
export const spawnChildNode = (transportTable: Record<string, unknown>): Effect.Effect<ChildNode, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        // `--import tsx` rather than the tsx CLI: one process, so SIGKILL really kills the node.
        spawn(process.execPath, ["--import", "tsx", entry, JSON.stringify(transportTable)], {
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (c) => Effect.sync(() => void (c.exitCode === null && c.kill("SIGKILL")))
    )
    const exited = yield* Deferred.make<void>()
    child.once("exit", () => Deferred.doneUnsafe(exited, Effect.void))
    const ready = yield* Deferred.make<LocalAddress, Error>()
    const received = yield* Queue.unbounded<Received>()
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)))
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return
      const parsed = JSON.parse(line) as { ready?: LocalAddress; received?: Received }
      if (parsed.ready !== undefined) Deferred.doneUnsafe(ready, Effect.succeed(parsed.ready))
      if (parsed.received !== undefined) Queue.offerUnsafe(received, parsed.received)
    })
    child.once("exit", (code) => Deferred.doneUnsafe(ready, Effect.fail(new Error(`child exited (${code}): ${stderr}`))))
    const address = yield* Deferred.await(ready).pipe(
      Effect.timeoutOrElse({ duration: "30 seconds", orElse: () => Effect.fail(new Error(`child not ready: ${stderr}`)) })
    )
    return {
      process: child,
      address,
      received,
      stop: (signal) =>
        Effect.suspend(() => {
          if (child.exitCode !== null) return Effect.void
          child.kill(signal)
          return Deferred.await(exited)
        })
    }
  })
