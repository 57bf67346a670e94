/**
 * Form B for `interleaved-ab.ts`: a leader pipelines up to `AB_MAX_INFLIGHT_APPENDS` (default 8)
 * unacknowledged appends per follower instead of `max_inflight_appends`. Form A is the
 * product's setting (1 by default).
 */
import { Progress } from "../../../src/raft/progress.ts"
import { inFormB } from "./signals.ts"

const inflight = Number(process.env["AB_MAX_INFLIGHT_APPENDS"] ?? 8)

const canSend = Progress.prototype.canSend
Progress.prototype.canSend = function(this: Progress, now: number, maxInflight: number, probeRetryMs: number) {
  return canSend.call(this, now, inFormB() ? inflight : maxInflight, probeRetryMs)
}
