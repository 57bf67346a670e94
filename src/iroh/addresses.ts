import iroh from "./native.ts"
import type { PeerAddress } from "../domain/peer-table.ts"
import type { DialAddress } from "./host.ts"

const { EndpointTicket } = iroh

/** Where to dial a peer: its ticket if it has one, else its endpoint id plus direct addresses. */
export const dialAddressOf = (peer: PeerAddress): DialAddress | undefined => {
  if (peer.irohTicket !== undefined) return { ticket: peer.irohTicket, addresses: peer.irohAddresses }
  if (peer.irohEndpointId === undefined) return undefined
  return { endpointId: peer.irohEndpointId, addresses: peer.irohAddresses }
}

/** The endpoint id a ticket names, so inbound connections can be matched to the peer. */
export const endpointIdOfTicket = (ticket: string): string =>
  EndpointTicket.fromString(ticket).endpointAddr().id().toString()
