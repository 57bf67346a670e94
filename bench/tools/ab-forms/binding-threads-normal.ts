/**
 * Form B: the Iroh binding's Tokio threads run as `SCHED_OTHER` (what they inherit from the
 * process) instead of the `SCHED_BATCH` the transport gives them (`src/iroh/thread-policy.ts`),
 * so a woken worker may preempt the event loop again.
 */
import { execFileSync } from "node:child_process"
import { bindingThreads } from "../../../src/iroh/thread-policy.ts"

const setPolicy = (flag: "-o" | "-b") => {
  for (const { tid } of bindingThreads()) execFileSync("chrt", [flag, "-p", "0", tid])
}
process.on("SIGUSR2", () => setPolicy("-o"))
process.on("SIGWINCH", () => setPolicy("-b"))
