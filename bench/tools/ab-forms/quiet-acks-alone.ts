/**
 * Form B for `interleaved-ab.ts`: on Iroh, the counts of messages that make the application
 * write nothing back (a leader's heartbeat answers) are written on their own at once, instead of
 * waiting `QUIET_ACK_RIDE_WAIT_MS` for a block to ride on. Form A is the product.
 */
import type { ReceiptRide } from "../../../src/inbound/inbound-receipts.ts"
import { AckRides } from "../../../src/iroh/ack-rides.ts"
import type { NodeId } from "../../../src/message/types.ts"
import { inFormB } from "./signals.ts"

const ride = AckRides.prototype.ride
AckRides.prototype.ride = function(this: AckRides, peer: NodeId, session: () => bigint | undefined): ReceiptRide {
  const own = ride.call(this, peer, session)
  return { ...own, waitMs: (quiet) => quiet && inFormB() ? 0 : own.waitMs(quiet) }
}
