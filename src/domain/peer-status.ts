import type { NodeId } from "../message/types.ts"
import type { TransportKind } from "./errors.ts"

/** Where a link's connector stands: dialling, up, idle (never wanted yet) or waiting out a backoff. */
export type ConnectorState = "connected" | "connecting" | "idle" | "backoff"

/** One transport's link to a peer, as `peerStatus` reports it. */
export interface LinkStatus {
  readonly transport: TransportKind
  readonly state: ConnectorState
  readonly consecutiveFailures: number
  readonly lastFailure: string | undefined
  readonly rttMs: number | undefined
  /**
   * Messages written on the current session that the peer has not confirmed taking yet: they
   * are counted as `link_failed` if the session is lost now (0 while not connected).
   */
  readonly unconfirmed: number
}

/** A peer's links, queue depths and routes, as `peerStatus` and `peers` report them. */
export interface PeerStatus {
  readonly peer: NodeId
  readonly links: ReadonlyArray<LinkStatus>
  /** Messages waiting per class (election, heartbeat, append, snapshot). */
  readonly queued: ReadonlyArray<number>
  readonly routes: ReadonlyArray<TransportKind>
}
