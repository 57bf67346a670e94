import { Deferred, Effect, Queue, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import type { LocalAddress } from "../../src/domain/raft-transport.ts"

const script = (name: string) => fileURLToPath(new URL(`./${name}.ts`, import.meta.url))

export interface Received {
  readonly from: number
  readonly type: number
  readonly index: number
  readonly commit: number
  /** `performance.now()` in this process when the child reported it. */
  readonly at: number
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
  /** SIGSTOP (true) or SIGCONT: the process and its sockets stay, nothing answers. */
  readonly pause: (paused: boolean) => Effect.Effect<void>
}

/**
 * The `[transport]` table of an Iroh-only child node `nodeId` bound to `bind`, with its key in
 * `dir` (the same key across restarts) and `parent` (the test's node 1) as its one peer.
 */
export const irohChildTable = (
  nodeId: number,
  bind: string,
  dir: string,
  parent: LocalAddress
): Record<string, unknown> => ({
  mode: "iroh",
  node_id: nodeId,
  bind_address: bind,
  iroh_config: { key_file: join(dir, `node${nodeId}.key`), relay_mode: "disabled" },
  peers: [{ id: parent.nodeId, iroh_endpoint_id: parent.iroh!.endpointId, iroh_addresses: parent.iroh!.addresses }]
})

/**
 * Starts `test/support/echo-node.ts` (or another node script there, given `args` after the
 * transport table) in a child process; killed when the scope closes. `wrap` prefixes the
 * command (`ip netns exec <ns>`, which execs it: the pid stays the node's).
 */
export const spawnChildNode = (
  transportTable: Record<string, unknown>,
  options: {
    readonly script?: string
    readonly args?: ReadonlyArray<string>
    readonly wrap?: (argv: ReadonlyArray<string>) => ReadonlyArray<string>
  } = {}
): Effect.Effect<ChildNode, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        // `--import tsx` rather than the tsx CLI: one process, so SIGKILL really kills the node.
        const argv = [process.execPath, "--import", "tsx", script(options.script ?? "echo-node"), JSON.stringify(transportTable), ...(options.args ?? [])]
        const [command, ...args] = options.wrap?.(argv) ?? argv
        return spawn(command!, args, { stdio: ["ignore", "pipe", "pipe"] })
      }),
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
      const parsed = JSON.parse(line) as { ready?: LocalAddress; received?: Omit<Received, "at"> }
      if (parsed.ready !== undefined) Deferred.doneUnsafe(ready, Effect.succeed(parsed.ready))
      else if (parsed.received !== undefined) Queue.offerUnsafe(received, { ...parsed.received, at: performance.now() })
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
        }),
      pause: (paused) => Effect.sync(() => void child.kill(paused ? "SIGSTOP" : "SIGCONT"))
    }
  })
