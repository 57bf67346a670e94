/**
 * Form B: the node as with `[process] scheduling = "inherit"`: its threads `SCHED_OTHER`, as
 * the process was started, but for the Iroh binding's, which the transport makes `SCHED_BATCH`
 * either way (`src/iroh/thread-policy.ts`). Form A is the default: every thread `SCHED_BATCH`
 * (`src/node/process-scheduling.ts`).
 */
import { execFileSync } from "node:child_process"
import { bindingThreads } from "../../../src/iroh/thread-policy.ts"
import { chrtArguments } from "../../../src/os/threads.ts"

process.on("SIGUSR2", () => {
  execFileSync("chrt", chrtArguments("other", process.pid, true))
  for (const { tid } of bindingThreads()) execFileSync("chrt", chrtArguments("batch", tid))
})
process.on("SIGWINCH", () => void execFileSync("chrt", chrtArguments("batch", process.pid, true)))
