/**
 * Form B: the Iroh binding's Tokio threads run as `SCHED_OTHER` (what they inherit from the
 * process) instead of the `SCHED_BATCH` the transport gives them (`src/iroh/thread-policy.ts`),
 * so a woken worker may preempt the event loop again.
 */
import { execFileSync } from "node:child_process"
import { bindingThreads } from "../../../src/iroh/thread-policy.ts"
import { chrtArguments, type SchedulingPolicy } from "../../../src/os/threads.ts"

const setPolicy = (policy: SchedulingPolicy) => {
  for (const { tid } of bindingThreads()) execFileSync("chrt", chrtArguments(policy, tid))
}
process.on("SIGUSR2", () => setPolicy("other"))
process.on("SIGWINCH", () => setPolicy("batch"))
