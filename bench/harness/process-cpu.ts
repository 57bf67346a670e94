/**
 * CPU time of other processes, from `/proc/<pid>/stat` (Linux): user + system, in ms, at the
 * kernel's tick resolution (10 ms at the usual 100 Hz), all threads included. The cluster phase
 * compares nodes and etcd members by it: CPU per acknowledged put and CPU of an idle cluster.
 */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

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
