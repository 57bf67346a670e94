import type { NodeId } from "../message/types.ts"

/** How to reach one peer, on each transport it speaks. */
export interface PeerAddress {
  readonly id: NodeId
  /** Hex-encoded Iroh endpoint id: the peer's cryptographic identity. */
  readonly irohEndpointId?: string | undefined
  readonly irohAddresses: ReadonlyArray<string>
  readonly irohTicket?: string | undefined
  readonly grpcAddress?: string | undefined
}

/**
 * The cluster's membership as the transport sees it: raft id -> addresses, and the reverse
 * index Iroh endpoint id -> raft id that inbound connections are authenticated against.
 */
export class PeerTable {
  private readonly byId = new Map<NodeId, PeerAddress>()
  private readonly byEndpoint = new Map<string, NodeId>()

  /**
   * `endpointIdOfTicket` reads the endpoint id out of an Iroh ticket; the transport passes the
   * binding's parser, so this table stays free of the binding.
   */
  constructor(readonly self: NodeId, private readonly endpointIdOfTicket?: (ticket: string) => string) {}

  /** Adds or replaces a peer; one given by ticket is indexed under the ticket's endpoint id. */
  set(address: PeerAddress): void {
    const peer = address.irohTicket !== undefined && address.irohEndpointId === undefined &&
        this.endpointIdOfTicket !== undefined
      ? { ...address, irohEndpointId: this.endpointIdOfTicket(address.irohTicket) }
      : address
    this.delete(peer.id)
    this.byId.set(peer.id, peer)
    if (peer.irohEndpointId !== undefined) this.byEndpoint.set(peer.irohEndpointId, peer.id)
  }

  delete(id: NodeId): PeerAddress | undefined {
    const old = this.byId.get(id)
    if (old === undefined) return undefined
    this.byId.delete(id)
    if (old.irohEndpointId !== undefined && this.byEndpoint.get(old.irohEndpointId) === id) {
      this.byEndpoint.delete(old.irohEndpointId)
    }
    return old
  }

  get(id: NodeId): PeerAddress | undefined {
    return this.byId.get(id)
  }

  peerForEndpoint(endpointId: string): NodeId | undefined {
    return this.byEndpoint.get(endpointId)
  }

  /** Peers other than this node. */
  remotes(): ReadonlyArray<PeerAddress> {
    return [...this.byId.values()].filter((p) => p.id !== this.self)
  }
}
