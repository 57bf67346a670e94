/**
 * The IPC vocabulary between the orchestrator (`run.ts`) and its peer processes
 * (`peer-process.ts`), and a mailbox that hands messages out by type.
 *
 * Messages are JSON objects with a `type`. Four types are answered by every child itself,
 * synchronously from the IPC handler: `probe-start`, `probe-mark`, `probe-stop` (see
 * `probe.ts`) and `shutdown`. Everything else is for the role, which takes it with `next(type)`.
 */
import { Data, Effect, Fiber, type Scope } from "effect"
import type { PeerAddress } from "../../src/domain/peer-table.ts"
import type { ProbeMark, ProbeWindow } from "./probe.ts"

export interface Msg {
  readonly type: string
}

/** A peer process's node is up; `address` is its peer-table entry, as others must dial it. */
export interface ReadyMsg extends Msg {
  readonly type: "ready"
  readonly address: PeerAddress
}

/** The other side's peer-table entry, for the role to add. */
export interface PeerMsg extends Msg {
  readonly type: "peer"
  readonly address: PeerAddress
}

/** The receiver's first delivery: the sender's traffic is flowing. */
export interface FirstMsg extends Msg {
  readonly type: "first"
}

export interface ProbeStartReply extends Msg {
  readonly type: "probe-start"
  readonly mark: ProbeMark
}

export interface ProbeMarkReply extends Msg {
  readonly type: "probe-mark"
  readonly mark: ProbeMark
}

export interface ProbeStopReply extends Msg {
  readonly type: "probe-stop"
  readonly window: ProbeWindow
}

export interface ErrorMsg extends Msg {
  readonly type: "error"
  readonly message: string
}

/** A peer process failed, exited early, or did not answer in time. */
export class PeerProcessFailed extends Data.TaggedError("PeerProcessFailed")<{
  readonly role: string
  readonly reason: string
  /** The last lines the child printed, for the report. */
  readonly output: string
}> {
  override get message() {
    const tail = this.output.trim()
    return `peer process "${this.role}": ${this.reason}${tail === "" ? "" : `\n--- last output ---\n${tail}`}`
  }
}

/** Messages by type, each taken once, in arrival order; waiters fail once the mailbox closes. */
export class TypedMailbox {
  private readonly buffered = new Map<string, Array<Msg>>()
  private readonly waiters = new Map<string, Array<(m: Msg | Error) => void>>()
  private closedWith: Error | undefined

  push(message: Msg): void {
    const waiting = this.waiters.get(message.type)
    const waiter = waiting?.shift()
    if (waiter !== undefined) return waiter(message)
    let queue = this.buffered.get(message.type)
    if (queue === undefined) this.buffered.set(message.type, queue = [])
    queue.push(message)
  }

  close(reason: Error): void {
    if (this.closedWith !== undefined) return
    this.closedWith = reason
    for (const list of this.waiters.values()) for (const w of list.splice(0)) w(reason)
  }

  get closed(): Error | undefined {
    return this.closedWith
  }

  /** The next message of `type`; fails with the close reason if none is left and the mailbox closed. */
  take<T extends Msg>(type: T["type"]): Effect.Effect<T, Error> {
    return Effect.callback<T, Error>((resume) => {
      const queued = this.buffered.get(type)?.shift()
      if (queued !== undefined) return resume(Effect.succeed(queued as T))
      if (this.closedWith !== undefined) return resume(Effect.fail(this.closedWith))
      const waiter = (m: Msg | Error) => resume(m instanceof Error ? Effect.fail(m) : Effect.succeed(m as T))
      let list = this.waiters.get(type)
      if (list === undefined) this.waiters.set(type, list = [])
      list.push(waiter)
      return Effect.sync(() => {
        const l = this.waiters.get(type)
        const i = l?.indexOf(waiter) ?? -1
        if (i >= 0) l!.splice(i, 1)
      })
    })
  }
}

/** What a role running in a peer process sees of the orchestrator. */
export interface ParentLink {
  /** Arguments after the role name. */
  readonly args: ReadonlyArray<string>
  readonly send: (message: Msg) => Effect.Effect<void>
  /** The next message of `type` from the orchestrator. */
  readonly next: <T extends Msg>(type: T["type"]) => Effect.Effect<T, Error>
  /** The counters reported with every probe (`probe.ts`). */
  readonly setCounters: (read: () => Readonly<Record<string, number>>) => void
}

/** A role's program: runs until its work is done, usually then waits for `shutdown`. */
export type Role = (parent: ParentLink) => Effect.Effect<void, unknown, Scope.Scope>

/**
 * The sender side of the `start` / `stop` exchange: runs `loop` from the orchestrator's `start`
 * until its `stop`, and returns once the loop has seen `running()` turn false and finished the
 * round in flight, so counters read afterwards are final. The caller sends the `stop` reply.
 */
export const runFromStartToStop = (
  parent: ParentLink,
  loop: (running: () => boolean) => Effect.Effect<unknown, unknown>
): Effect.Effect<void, Error, Scope.Scope> =>
  Effect.gen(function*() {
    let running = true
    yield* parent.next("start")
    const fiber = yield* Effect.forkScoped(loop(() => running), { startImmediately: true })
    yield* parent.next("stop")
    running = false
    yield* Fiber.await(fiber)
  })
