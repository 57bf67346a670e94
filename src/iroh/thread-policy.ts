/**
 * The scheduling policy of the binding's Tokio threads (Linux).
 *
 * Every binding call that hands work to Tokio (`writeAll`, a read, a ping) wakes one of its
 * worker threads, and the kernel lets a freshly woken thread preempt the thread that woke it:
 * the event loop then waits, inside the call, while the worker sends the packet on the same
 * core. `SCHED_BATCH` keeps the workers' share of the CPU (same weight as any thread) and only
 * takes away that preemption, so a worker runs on the other core or once the event loop is
 * done with its turn (docs/design.md, "The binding's threads do not preempt the event loop").
 *
 * Node has no call for a thread's policy, so it is set with util-linux's `chrt`, once per thread
 * (the runtime starts its workers with the first endpoint; threads they start later inherit it).
 */
import { Effect, Metric } from "effect"
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import * as M from "../metrics/metrics.ts"

/** `"batch"`: the binding's threads run as `SCHED_BATCH`; `"inherit"`: as the process's. */
export type BindingThreadPolicy = "batch" | "inherit"

/** `SCHED_BATCH`, as `/proc/<pid>/task/<tid>/stat` gives a thread's policy. */
const SCHED_BATCH = 3

/** `chrt` is a short-lived exec; one that hangs must not hold the transport's start. */
const CHRT_TIMEOUT_MS = 2000

export interface TaskPolicy {
  readonly tid: string
  /** The policy number of `sched_setscheduler(2)` (0 normal, 3 batch, ...). */
  readonly policy: number
}

/** A thread's name and policy from its `stat` line, or undefined when it does not parse. */
export const parseTaskStat = (stat: string): { readonly comm: string; readonly policy: number } | undefined => {
  const open = stat.indexOf("(")
  const close = stat.lastIndexOf(")")
  if (open < 0 || close < open) return undefined
  // The fields after the name start with the third (state); the policy is the 41st.
  const policy = Number(stat.slice(close + 2).split(" ")[41 - 3])
  return Number.isInteger(policy) ? { comm: stat.slice(open + 1, close), policy } : undefined
}

/** This process's threads that the binding's Tokio runtime started; none where `/proc` is absent. */
export const bindingThreads = (): ReadonlyArray<TaskPolicy> => {
  let tids: ReadonlyArray<string>
  try {
    tids = readdirSync("/proc/self/task")
  } catch {
    return []
  }
  const threads: Array<TaskPolicy> = []
  for (const tid of tids) {
    let stat: string
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
    } catch {
      continue // the thread ended between the listing and the read
    }
    const parsed = parseTaskStat(stat)
    if (parsed !== undefined && parsed.comm.startsWith("tokio")) threads.push({ tid, policy: parsed.policy })
  }
  return threads
}

/**
 * Makes thread `id` `SCHED_BATCH` with `chrt`, or with `allThreads` every thread of process
 * `id`; fails with why not (no `chrt`, no permission).
 */
export const runAsBatch = (id: number | string, allThreads = false): Effect.Effect<void, string> =>
  Effect.callback<void, string>((resume) => {
    const args = [...(allThreads ? ["-a"] : []), "-b", "-p", "0", String(id)]
    execFile("chrt", args, { timeout: CHRT_TIMEOUT_MS }, (error, _stdout, stderr) =>
      resume(error === null ? Effect.void : Effect.fail(stderr.trim() || error.message)))
  })

const batchThreads = Metric.withAttributes(M.irohBindingThreads, { policy: "batch" })
const otherThreads = Metric.withAttributes(M.irohBindingThreads, { policy: "other" })

/**
 * Applies `policy` to the binding's threads that do not have it yet, and sets the
 * `raft_transport_iroh_binding_threads` gauge from what they run as then. A thread that cannot
 * be changed (no `chrt`, not Linux) keeps its policy: logged once per call, at info, since the
 * transport works the same, only with the event loop preempted more often.
 */
export const applyBindingThreadPolicy = (policy: BindingThreadPolicy): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (policy === "batch" && process.platform === "linux") {
      const failures: Array<string> = []
      for (const thread of bindingThreads()) {
        if (thread.policy === SCHED_BATCH) continue
        const result = yield* Effect.result(runAsBatch(thread.tid))
        if (result._tag === "Failure") failures.push(result.failure)
      }
      if (failures.length > 0) {
        yield* Effect.logInfo(
          `${failures.length} of the Iroh binding's threads keep their scheduling policy (chrt -b: ${failures[0]}); ` +
            `they may preempt the event loop on each call`
        )
      }
    }
    const threads = bindingThreads()
    const batch = threads.filter((t) => t.policy === SCHED_BATCH).length
    yield* Metric.update(batchThreads, batch)
    yield* Metric.update(otherThreads, threads.length - batch)
  })
