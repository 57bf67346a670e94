/**
 * This process's threads as Linux shows them (`/proc/<pid>/task`) and their scheduling policy,
 * which Node has no call for: it is set with util-linux's `chrt` (docs/design.md,
 * "Dependencies"). Used by the Iroh transport for the binding's threads
 * (`iroh/thread-policy.ts`) and by the node process for all of its own
 * (`node/process-scheduling.ts`).
 */
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"

/** The policy numbers of `sched_setscheduler(2)`, as a thread's `stat` line gives them. */
export const SCHED_OTHER = 0
export const SCHED_BATCH = 3

export type SchedulingPolicy = "batch" | "other"

export interface ThreadInfo {
  readonly tid: string
  readonly comm: string
  /** `SCHED_OTHER`, `SCHED_BATCH`, ... */
  readonly policy: number
}

/** `chrt` is a short-lived exec; one that hangs must not hold a start. */
const CHRT_TIMEOUT_MS = 2000

/** A thread's name and policy from its `stat` line, or undefined when it does not parse. */
export const parseTaskStat = (stat: string): { readonly comm: string; readonly policy: number } | undefined => {
  const open = stat.indexOf("(")
  const close = stat.lastIndexOf(")")
  if (open < 0 || close < open) return undefined
  // The fields after the name start with the third (state); the policy is the 41st.
  const policy = Number(stat.slice(close + 2).split(" ")[41 - 3])
  return Number.isInteger(policy) ? { comm: stat.slice(open + 1, close), policy } : undefined
}

/** The thread ids of process `pid` (`/proc/<pid>/task`); none where they cannot be listed (not Linux, or gone). */
export const threadIdsOf = (pid: number | "self" = "self"): ReadonlyArray<string> => {
  try {
    return readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
}

/** `/proc/<pid>/task/<tid>/<file>`, or undefined when the thread ended since it was listed. */
export const readThreadFile = (pid: number | "self", tid: string, file: string): string | undefined => {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/${file}`, "utf8")
  } catch {
    return undefined
  }
}

/** The threads of process `pid` (this one by default); none where `/proc` is absent. */
export const threadsOf = (pid: number | "self" = "self"): ReadonlyArray<ThreadInfo> =>
  threadIdsOf(pid).flatMap((tid) => {
    const stat = readThreadFile(pid, tid, "stat")
    const parsed = stat === undefined ? undefined : parseTaskStat(stat)
    return parsed === undefined ? [] : [{ tid, ...parsed }]
  })

/** `chrt`'s arguments that give thread `id` (with `allThreads`, every thread of process `id`) `policy`. */
export const chrtArguments = (policy: SchedulingPolicy, id: number | string, allThreads = false): Array<string> => [
  ...(allThreads ? ["-a"] : []),
  policy === "batch" ? "-b" : "-o",
  "-p",
  "0",
  String(id)
]

/** Gives thread `id` (or every thread of process `id`) `policy`; fails with why not (no `chrt`, no permission). */
export const setSchedulingPolicy = (policy: SchedulingPolicy, id: number | string, allThreads = false): Effect.Effect<void, string> =>
  Effect.callback<void, string>((resume) => {
    execFile("chrt", chrtArguments(policy, id, allThreads), { timeout: CHRT_TIMEOUT_MS }, (error, _stdout, stderr) =>
      resume(error === null ? Effect.void : Effect.fail(stderr.trim() || error.message)))
  })
