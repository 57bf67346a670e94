/**
 * Form B for `interleaved-ab.ts`: on Iroh, a wait of the dark watch started by a heartbeat
 * answer (a send the peer answers late, with its next write) is sampled like any other: from
 * QUIC's ack delay and a round trip on, with a timer that no answer cuts short. Form A is the
 * product: such a wait is first sampled once the answer is overdue, and its answer ends it.
 */
import { DarkWatch } from "../../../src/peer/dark-watch.ts"
import { inFormB } from "./signals.ts"

const noteSent = DarkWatch.prototype.noteSent
DarkWatch.prototype.noteSent = function(this: DarkWatch, now: number, late?: boolean): boolean {
  return noteSent.call(this, now, late === true && !inFormB())
}
