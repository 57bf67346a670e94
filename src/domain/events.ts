import type { ClassName } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import type { TransportKind } from "./errors.ts"

/**
 * What the transport tells its user about links, on `RaftTransport.events`. Every event is
 * also logged and counted where it happens.
 */
export type TransportEvent =
  | { readonly _tag: "Connected"; readonly peer: NodeId; readonly transport: TransportKind }
  | { readonly _tag: "Disconnected"; readonly peer: NodeId; readonly transport: TransportKind; readonly cause: string }
  | { readonly _tag: "SnapshotFailed"; readonly peer: NodeId; readonly transport: TransportKind; readonly cause: string }
  | { readonly _tag: "FellBack"; readonly peer: NodeId; readonly cause: string }
  | { readonly _tag: "Recovered"; readonly peer: NodeId }
  | {
    readonly _tag: "RouteChanged"
    readonly peer: NodeId
    readonly class: ClassName
    readonly from: TransportKind
    readonly to: TransportKind
    readonly reason: string
  }
  | { readonly _tag: "PeerAdded"; readonly peer: NodeId }
  | { readonly _tag: "PeerRemoved"; readonly peer: NodeId }
