/**
 * Form B: the node as with `[process] scheduling = "inherit"`: its threads `SCHED_OTHER`, as
 * the process was started, but for the Iroh binding's, which the transport makes `SCHED_BATCH`
 * either way (`src/iroh/thread-policy.ts`). Form A is the default: every thread `SCHED_BATCH`
 * (`src/node/process-scheduling.ts`).
 */
import { execFileSync } from "node:child_process"
import { bindingThreads } from "../../../src/iroh/thread-policy.ts"

const pid = String(process.pid)
process.on("SIGUSR2", () => {
  execFileSync("chrt", ["-a", "-o", "-p", "0", pid])
  for (const { tid } of bindingThreads()) execFileSync("chrt", ["-b", "-p", "0", tid])
})
process.on("SIGWINCH", () => void execFileSync("chrt", ["-a", "-b", "-p", "0", pid]))
