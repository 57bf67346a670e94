import iroh from "@number0/iroh"
import type { PeerAddress } from "../transport/peer-table.ts"
import type { DialAddress } from "./host.ts"

const { EndpointTicket } = iroh

/** Where to dial a peer: its ticket if it has one, else its endpoint id plus direct addresses. */
export const dialAddressOf = (peer: PeerAddress): DialAddress | undefined => {
  if (peer.irohTicket !== undefined) return { ticket: peer.irohTicket, addresses: peer.irohAddresses }
  if (peer.irohEndpointId === undefined) return undefined
  return { endpointId: peer.irohEndpointId, addresses: peer.irohAddresses }
}

/** Fills in the endpoint id from the ticket, so inbound connections can be matched to the peer. */
export const withEndpointIdFromTicket = (peer: PeerAddress): PeerAddress =>
  peer.irohTicket !== undefined && peer.irohEndpointId === undefined
    ? { ...peer, irohEndpointId: EndpointTicket.fromString(peer.irohTicket).endpointAddr().id().toString() }
    : peer
