/**
 * CPU time of other processes, from `/proc/<pid>/stat` (Linux): user + system, in ms, at the
 * kernel's tick resolution (10 ms at the usual 100 Hz), all threads included. The cluster phase
 * compares nodes and etcd members by it: CPU per acknowledged put and CPU of an idle cluster.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { readThreadFile, threadIdsOf } from "../../src/os/threads.ts"

const ticksPerSecond = (): number => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    return Number.isFinite(n) && n > 0 ? n : 100
  } catch {
    // Without getconf, Linux's USER_HZ, which is 100 on every architecture Node runs on.
    return 100
  }
}

let msPerTick: number | undefined

/** User + system CPU time of `pid` so far, ms; NaN when it cannot be read (not Linux, or gone). */
export const processCpuMs = (pid: number): number => {
  msPerTick ??= 1000 / ticksPerSecond()
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return Number.NaN
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // utime and stime are fields 14 and 15 of the line, so 11 and 12 after the name.
  return (Number(fields[11]) + Number(fields[12])) * msPerTick
}

/** The summed CPU time of `pids`, ms. */
export const processesCpuMs = (pids: ReadonlyArray<number>): number => pids.reduce((sum, pid) => sum + processCpuMs(pid), 0)

/**
 * Time `pid`'s threads have run so far, ms, to the nanosecond the scheduler counts
 * (`/proc/<pid>/task/<tid>/schedstat`); NaN when it cannot be read. `processCpuMs` moves in 10 ms
 * steps, which is a tenth of what an idle member uses in a second: a comparison of half-second
 * slices needs this. Threads that ended are not counted, so it suits short intervals in which
 * threads live on, not a process's lifetime.
 */
export const processRuntimeMs = (pid: number): number => {
  const tids = threadIdsOf(pid)
  if (tids.length === 0) return Number.NaN
  let ns = 0
  for (const tid of tids) {
    const schedstat = readThreadFile(pid, tid, "schedstat")
    if (schedstat !== undefined) ns += Number(schedstat.split(" ")[0])
  }
  return ns / 1e6
}

/** The summed run time of `pids`, ms (see `processRuntimeMs`). */
export const processesRuntimeMs = (pids: ReadonlyArray<number>): number => pids.reduce((sum, pid) => sum + processRuntimeMs(pid), 0)

/**
 * Context switches of `pid` so far, all threads, voluntary and not (`/proc/<pid>/task/<tid>/status`);
 * NaN when it cannot be read. A thread that sleeps and is woken costs a switch each way, and on
 * a VM each wake-up costs far more CPU than the work it wakes for at one client, so switches per
 * put say how many times a put woke someone. Threads that ended are not counted.
 */
export const processContextSwitches = (pid: number): number => {
  const tids = threadIdsOf(pid)
  if (tids.length === 0) return Number.NaN
  let sum = 0
  for (const tid of tids) {
    const status = readThreadFile(pid, tid, "status")
    if (status === undefined) continue // the thread ended between the listing and the read
    for (const match of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) sum += Number(match[1])
  }
  return sum
}

/** The summed context switches of `pids`. */
export const processesContextSwitches = (pids: ReadonlyArray<number>): number =>
  pids.reduce((sum, pid) => sum + processContextSwitches(pid), 0)
