/**
 * The orchestrator's side of a peer process: fork `peer-process.ts` under tsx with an IPC
 * channel, take its messages by type with a timeout, and make sure it dies with the scope
 * (a polite `shutdown`, then SIGKILL) and with this process (exit and signal handlers).
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Duration, Effect, type Scope } from "effect"
import { epochNow, type ProbeMark, type ProbeWindow } from "./probe.ts"
import type { PeerAddress } from "../../src/domain/peer-table.ts"
import { nodeV8Flags } from "../../src/node/v8-flags.ts"
import {
  type ErrorMsg,
  type Msg,
  PeerProcessFailed,
  type PeerMsg,
  type ProbeMarkReply,
  type ProbeStartReply,
  type ProbeStopReply,
  type ReadyMsg,
  TypedMailbox
} from "./ipc.ts"

const ENTRY = fileURLToPath(new URL("../peer-process.ts", import.meta.url))
const TSX_LOADER = import.meta.resolve("tsx")
const OUTPUT_LINES = 40
const DEFAULT_TIMEOUT_MS = 30_000
const SHUTDOWN_GRACE_MS = 3_000

export interface PeerProcess {
  readonly role: string
  readonly pid: number
  readonly send: (message: Msg) => Effect.Effect<void, PeerProcessFailed>
  /** The next message of `type`, failing when the child exits, reports an error, or times out. */
  readonly next: <T extends Msg>(type: T["type"], timeoutMs?: number) => Effect.Effect<T, PeerProcessFailed>
  /** Sends and waits for the reply of the same type. */
  readonly request: <T extends Msg>(message: Msg & { readonly type: T["type"] }, timeoutMs?: number) => Effect.Effect<T, PeerProcessFailed>
  readonly probeStart: Effect.Effect<ProbeMark, PeerProcessFailed>
  /** Counters now, inside a probe window, without ending it. */
  readonly probeMark: Effect.Effect<ProbeMark, PeerProcessFailed>
  readonly probeStop: Effect.Effect<ProbeWindow, PeerProcessFailed>
  /**
   * Sends `signal` to the process and waits (up to 5 s) for it to exit. Succeeds with the
   * moment the signal went out, as `epochNow()`.
   * SIGTERM lets the role's scope close (a graceful shutdown); SIGKILL does not.
   */
  readonly kill: (signal: "SIGTERM" | "SIGKILL") => Effect.Effect<number>
}

// Every child still alive, so a crash or Ctrl-C of the orchestrator takes them along.
const live = new Set<ChildProcess>()
const killAll = () => {
  for (const child of live) {
    try {
      child.kill("SIGKILL")
    } catch {
      // already gone
    }
  }
  live.clear()
}
// Installed by the first `spawnPeer`, not at import: peer processes import this module too
// (through the role modules), and there SIGTERM must close the role's scope instead.
let handlersInstalled = false
const installHandlers = () => {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on("exit", killAll)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll()
      process.exit(130)
    })
  }
}

const verbose = process.env["BENCH_VERBOSE"] === "1"

/**
 * The V8 flags a node process gets from our own launcher on this machine (`nodeV8Flags`),
 * unless `BENCH_DEFAULT_GC=1` asks for V8's defaults, to compare.
 */
export const peerV8Flags = (): ReadonlyArray<string> => (process.env["BENCH_DEFAULT_GC"] === "1" ? [] : nodeV8Flags())

export const spawnPeer = (
  role: string,
  args: ReadonlyArray<string> = []
): Effect.Effect<PeerProcess, PeerProcessFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      installHandlers()
      const child = fork(ENTRY, [role, ...args], {
        execPath: process.execPath,
        execArgv: [...peerV8Flags(), "--import", TSX_LOADER, ...(process.env["BENCH_NODE_FLAGS"] ?? "").split(" ").filter((f) => f !== "")],
        stdio: ["ignore", "pipe", "pipe", "ipc"],
        serialization: "json"
      })
      live.add(child)
      const lines: Array<string> = []
      const capture = (stream: string) => (chunk: Buffer) => {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line.trim() === "") continue
          lines.push(line)
          if (lines.length > OUTPUT_LINES) lines.shift()
          if (verbose) process.stderr.write(`  [${role}:${stream}] ${line}\n`)
        }
      }
      child.stdout?.on("data", capture("out"))
      child.stderr?.on("data", capture("err"))
      const mailbox = new TypedMailbox()
      const failure = (reason: string) => new PeerProcessFailed({ role, reason, output: lines.join("\n") })
      let exited = false
      child.on("message", (m: unknown) => {
        const msg = m as Msg
        if (msg.type === "error") mailbox.close(new Error(`reported an error: ${(msg as ErrorMsg).message}`))
        else mailbox.push(msg)
      })
      child.on("error", (error) => mailbox.close(new Error(`process error: ${error.message}`)))
      const waitExit = (ms: number) =>
        Promise.race([exitedPromise.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())])
      const exitedPromise = new Promise<void>((resolve) =>
        child.on("exit", (code, signal) => {
          exited = true
          live.delete(child)
          mailbox.close(new Error(`exited (code ${code ?? "-"}, signal ${signal ?? "-"})`))
          resolve()
        })
      )
      const toFailure = (error: Error) => failure(error.message)
      const next = <T extends Msg>(type: T["type"], timeoutMs = DEFAULT_TIMEOUT_MS) =>
        mailbox.take<T>(type).pipe(
          Effect.mapError(toFailure),
          Effect.timeoutOrElse({
            duration: Duration.millis(timeoutMs),
            orElse: () => Effect.fail(failure(`no "${type}" message within ${timeoutMs} ms`))
          })
        )
      const send = (message: Msg) =>
        Effect.suspend(() => {
          if (exited || !child.connected) {
            return Effect.fail(mailbox.closed === undefined ? failure("not connected") : toFailure(mailbox.closed))
          }
          child.send(message)
          return Effect.void
        })
      const request = <T extends Msg>(message: Msg & { readonly type: T["type"] }, timeoutMs?: number) =>
        Effect.andThen(send(message), next<T>(message.type, timeoutMs))
      const handle: PeerProcess = {
        role,
        pid: child.pid ?? -1,
        send,
        next,
        request,
        probeStart: Effect.map(request<ProbeStartReply>({ type: "probe-start" }, 5_000), (r) => r.mark),
        probeMark: Effect.map(request<ProbeMarkReply>({ type: "probe-mark" }, 5_000), (r) => r.mark),
        probeStop: Effect.map(request<ProbeStopReply>({ type: "probe-stop" }, 5_000), (r) => r.window),
        kill: (signal) =>
          Effect.promise(async (_signal) => {
            const at = epochNow()
            if (!exited) {
              child.kill(signal)
              await waitExit(5_000)
            }
            return at
          })
      }
      return { child, handle, waitExit, isExited: () => exited }
    }),
    ({ child, isExited, waitExit }) =>
      Effect.promise(async () => {
        if (isExited()) return
        if (child.connected) child.send({ type: "shutdown" })
        if (await waitExit(SHUTDOWN_GRACE_MS)) return
        child.kill("SIGKILL")
        await waitExit(1_000)
      })
  ).pipe(Effect.map(({ handle }) => handle))

/** Hands `peer` the address of the node it talks to and waits until its role has added it (`meetPeer`). */
export const introduce = (peer: PeerProcess, address: PeerAddress): Effect.Effect<void, PeerProcessFailed> =>
  Effect.asVoid(peer.request({ type: "peer", address } as PeerMsg))

/** Spawns two roles that each start a node (both with `args`) and introduces them to each other. */
export const spawnPair = (
  roleA: string,
  roleB: string,
  args: ReadonlyArray<string>
): Effect.Effect<readonly [PeerProcess, PeerProcess], PeerProcessFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const a = yield* spawnPeer(roleA, args)
    const b = yield* spawnPeer(roleB, args)
    const [readyA, readyB] = yield* Effect.all([a.next<ReadyMsg>("ready"), b.next<ReadyMsg>("ready")], { concurrency: 2 })
    yield* introduce(a, readyB.address)
    yield* introduce(b, readyA.address)
    return [a, b] as const
  })
