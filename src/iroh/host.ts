/**
 * What the acceptor and the links need from Iroh, in bytes rather than the binding's
 * `Array<number>`. Two hosts implement it: `direct-host.ts` calls the binding on the calling
 * thread; `worker-host.ts` runs it in a worker thread, so the per-byte conversions (about
 * 50 ns a byte, synchronous) stop holding the event loop that runs Raft and the actors.
 *
 * Promises here behave like the binding's: they cannot be cancelled, and a pending one
 * settles when its stream, connection or endpoint closes.
 */
import type { ConnectionActivity, PingAnswerLimits, PingAnswers } from "./binding.ts"

import type { DialAddress } from "./addressing.ts"

export type { DialAddress, RelayModeSetting } from "./addressing.ts"

export interface IrohSendStream {
  /**
   * Writes `payloads` as length-prefixed frames (docs/design.md, "Wire format") in one call, led by
   * `lead` (the stream preamble) when given.
   */
  readonly writeFrames: (payloads: ReadonlyArray<Uint8Array>, lead?: Uint8Array) => Promise<void>
}

export interface IrohRecvStream {
  /** Up to `maxBytes`; empty when the sender finished the stream. */
  readonly read: (maxBytes: number) => Promise<Uint8Array>
  readonly readExact: (bytes: number) => Promise<Uint8Array>
  readonly stop: (code: bigint) => Promise<void>
}

export interface IrohConnection {
  /** Hex endpoint id of the other side. */
  readonly remoteId: string
  /** A uni stream with a QUIC send priority (higher goes first). */
  readonly openUni: (priority: number) => Promise<IrohSendStream>
  readonly acceptUni: () => Promise<IrohRecvStream>
  /** One round trip on a fresh bi stream that the other side echoes (`answerPings`). */
  readonly ping: () => Promise<void>
  /**
   * Echoes the other side's pings until the connection closes: at most `limits.maxConcurrent`
   * at a time (more are stopped at once), each given `limits.timeoutMs` to arrive.
   */
  readonly answerPings: (limits: PingAnswerLimits) => Promise<PingAnswers>
  /** Caps the streams the other side may have open at once (QUIC stream credit). */
  readonly limitStreams: (uni: number, bi: number) => void
  /** Settles with the reason once the connection has closed. */
  readonly closed: () => Promise<string>
  /**
   * Datagrams sent and received so far (see `activityOf`), read when called: before anything
   * handed to the connection after the call (the worker thread takes calls in order).
   */
  readonly activity: () => Promise<ConnectionActivity>
  readonly close: (code: bigint, reason: string) => void
}

export interface IrohIncoming {
  /** Completes the handshake; `alpn` is what the dialler asked for. */
  readonly accept: () => Promise<{ readonly connection: IrohConnection; readonly alpn: string }>
  /** Refuses the connection before any handshake work (the node is at its connection cap). */
  readonly refuse: () => Promise<void>
}

export interface IrohHost {
  /** Hex endpoint id: the node's public key and identity on Iroh. */
  readonly endpointId: string
  /** Direct `ip:port` addresses peers can dial. */
  readonly directAddresses: () => ReadonlyArray<string>
  /** A ticket with the id and addresses, for peer tables on other machines. */
  readonly ticket: () => string
  /** Dials with `alpn` (default: the host's own, wire version 1). */
  readonly connect: (address: DialAddress, alpn?: ReadonlyArray<number>) => Promise<IrohConnection>
  /** The next inbound connection, or null once the endpoint has closed. */
  readonly acceptNext: () => Promise<IrohIncoming | null>
  readonly close: () => Promise<void>
  /**
   * Settles, with the reason, if the host dies while open (the worker thread crashed); every
   * pending and later call then fails. The in-thread host never settles it.
   */
  readonly failed: Promise<string>
}
