import { Effect } from "effect"
import type { DialAddress } from "./addressing.ts"
import type { IrohConnection } from "./host.ts"
import { irohCall } from "./protocol.ts"

/** How often a live connection's paths are read for the peer's current addresses. */
const READ_EVERY_MS = 1000

/**
 * The peer's IP addresses that a live connection with it (outbound or inbound) last had paths
 * to. A peer whose address changed can stay reachable on a live connection through a path
 * the configured address knows nothing of: its NAT rebound under the connection it dialled
 * (QUIC migrates the dialling side), or it announced a new address. When this node then has
 * to redial it, the configured address alone can be dead forever; these are tried first.
 */
export class LearnedAddresses {
  private addresses: ReadonlyArray<string> = []

  get(): ReadonlyArray<string> {
    return this.addresses
  }

  set(addresses: ReadonlyArray<string>): void {
    if (addresses.length > 0) this.addresses = addresses
  }
}

/** The configured dial address plus the learned ones (first, without repeats). */
export const withLearned = (configured: DialAddress, learned: ReadonlyArray<string>): DialAddress => {
  if (learned.length === 0) return configured
  const addresses = [...new Set([...learned, ...configured.addresses])]
  return configured.ticket !== undefined
    ? { ticket: configured.ticket, addresses }
    : { endpointId: configured.endpointId, addresses }
}

/**
 * Reads the connection's paths every second while it lives and keeps `into` up to date;
 * logs an address the configuration does not have once. Ends with the connection.
 */
export const watchRemoteAddresses = (
  connection: IrohConnection,
  configured: ReadonlyArray<string>,
  into: LearnedAddresses
): Effect.Effect<void> =>
  Effect.gen(function*() {
    let last = ""
    while (true) {
      yield* Effect.sleep(READ_EVERY_MS)
      const addresses = yield* irohCall(() => connection.remoteAddresses(), (cause) => new Error(cause))
      if (addresses.length === 0) continue
      into.set(addresses)
      const key = addresses.join(",")
      const unconfigured = addresses.filter((a) => !configured.includes(a))
      if (key !== last && unconfigured.length > 0) {
        yield* Effect.logInfo(`peer reachable at ${unconfigured.join(", ")} (not configured); redials try it too`)
      }
      last = key
    }
  }).pipe(Effect.catch((error) => Effect.logDebug(`reading the connection's paths ended: ${error.message}`)))
