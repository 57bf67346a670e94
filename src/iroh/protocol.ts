import { Data, Effect } from "effect"
import { messageOf as irohErrorMessage } from "./binding.ts"

const alpnBytes = (text: string): Array<number> => Array.from(new TextEncoder().encode(text))

/** ALPN of wire format version 1 (docs/design.md, "Wire format"). */
export const ALPN_TEXT = "raft-transport/1"
export const ALPN: Array<number> = alpnBytes(ALPN_TEXT)

/**
 * ALPN of version 1 with delivery acknowledgements: the class streams are as in version 1,
 * and the accepting side opens one uni stream back to the dialler carrying, per class, the
 * cumulative count of messages it has handled (`ack-stream.ts`). Dialled first; a peer that
 * refuses it (an older node) is dialled again with version 1.
 */
export const ALPN_ACKED_TEXT = "raft-transport/1+ack"
export const ALPN_ACKED: Array<number> = alpnBytes(ALPN_ACKED_TEXT)

/** Every ALPN an endpoint accepts. */
export const ACCEPTED_ALPNS: ReadonlyArray<ReadonlyArray<number>> = [ALPN_ACKED, ALPN]

/** How a dial to a node that does not speak the asked-for ALPN fails (TLS alert 120). */
export const isAlpnRefusal = (message: string): boolean => message.includes("peer doesn't support any known protocol")

/**
 * QUIC stream priorities by class: higher is sent first when the congestion window is the
 * bottleneck (quinn semantics), so election > heartbeat > append > snapshot.
 */
export const STREAM_PRIORITY: ReadonlyArray<number> = [3, 2, 1, 0]

/** The acknowledgement stream goes before everything the accepting side sends: a late ack is a false loss. */
export const ACK_STREAM_PRIORITY = 4

/** Application error codes used to close connections and stop streams. */
export const ErrorCode = {
  Normal: 0n,
  UnknownEndpoint: 1n,
  BadPreamble: 2n,
  FrameTooLarge: 3n,
  DecodeFailed: 4n,
  PeerRemoved: 5n,
  Shutdown: 6n,
  /** The receiver failed to handle what it read (a bug, not the sender's fault). */
  Internal: 7n
} as const

/** A ping is these bytes on a fresh bi stream, echoed back by the receiver. */
export const PING_BYTES: Array<number> = [0x52, 0x54, 0x50, 0x49, 0x4e, 0x47, 0x00, 0x01] // "RTPING\0\1"

/**
 * Bytes asked of the binding per read, by class. The binding makes each read an
 * `Array<number>` (~60 ns per byte) on the thread that runs it, the event loop unless
 * `worker_thread` is on: appends read 64 KiB for throughput, the other classes
 * 8 KiB so a snapshot stream never holds the loop for more than ~0.5 ms at a time.
 */
export const READ_CHUNK_BYTES: ReadonlyArray<number> = [8 * 1024, 8 * 1024, 64 * 1024, 8 * 1024]

export { irohErrorMessage }

/**
 * A binding call as an interruptible Effect. The binding's promises cannot be cancelled, so
 * interruption just stops waiting (the pending native call ends when its stream, connection
 * or endpoint closes). Without the `signal` parameter `Effect.tryPromise` would wait for the
 * promise on interruption, and a read on a quiet stream would hold a scope open forever.
 */
export const irohCall = <A, E>(call: () => Promise<A>, onError: (message: string) => E): Effect.Effect<A, E> =>
  Effect.tryPromise({ try: (_signal) => call(), catch: (cause) => onError(irohErrorMessage(cause)) })

/** A binding call failed where no more specific error applies (inbound streams, accepts). */
export class IrohFailure extends Data.TaggedError("IrohFailure")<{ readonly message: string }> {
  static of = (message: string): IrohFailure => new IrohFailure({ message })
}
