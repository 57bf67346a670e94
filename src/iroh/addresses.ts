import iroh from "@number0/iroh"
import type { PeerAddress } from "../transport/peer-table.ts"

const { EndpointAddr, EndpointId, EndpointTicket } = iroh
export type IrohEndpointAddr = InstanceType<typeof EndpointAddr>

/** Where to dial a peer: its ticket if it has one, else its endpoint id plus direct addresses. */
export const endpointAddrOf = (peer: PeerAddress): IrohEndpointAddr | undefined => {
  if (peer.irohTicket !== undefined) {
    const fromTicket = EndpointTicket.fromString(peer.irohTicket).endpointAddr()
    if (peer.irohAddresses.length === 0) return fromTicket
    return new EndpointAddr(fromTicket.id(), fromTicket.relayUrl(), [...fromTicket.directAddresses(), ...peer.irohAddresses])
  }
  if (peer.irohEndpointId === undefined) return undefined
  return new EndpointAddr(EndpointId.fromString(peer.irohEndpointId), null, [...peer.irohAddresses])
}

/** Fills in the endpoint id from the ticket, so inbound connections can be matched to the peer. */
export const withEndpointIdFromTicket = (peer: PeerAddress): PeerAddress =>
  peer.irohTicket !== undefined && peer.irohEndpointId === undefined
    ? { ...peer, irohEndpointId: EndpointTicket.fromString(peer.irohTicket).endpointAddr().id().toString() }
    : peer
