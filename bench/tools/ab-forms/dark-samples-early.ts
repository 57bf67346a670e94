/**
 * Form B for `interleaved-ab.ts`: an Iroh dark watch samples a wait's counters from 25 ms after
 * its send, before QUIC's acknowledgement of a lone packet can be back (25 ms ack delay and a
 * round trip). Form A is the product: from 30 ms and a round trip.
 */
import { DarkWatch } from "../../../src/peer/dark-watch.ts"
import { inFormB } from "./signals.ts"

const firstSampleAfterMs = DarkWatch.prototype.firstSampleAfterMs
DarkWatch.prototype.firstSampleAfterMs = function(this: DarkWatch) {
  return inFormB() ? 25 : firstSampleAfterMs.call(this)
}
