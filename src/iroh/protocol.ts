import { Data, Effect } from "effect"
import { messageOf as irohErrorMessage } from "./binding.ts"

const utf8 = (text: string): Array<number> => Array.from(new TextEncoder().encode(text))

/**
 * Wire protocols, one per ALPN, and how a pair agrees on one (docs/design.md, "Wire format
 * (versions 2 and 3)"). Two things vary between them:
 * - `version`, the framing of the class streams, repeated in each stream's preamble
 *   (`message/framing.ts`): 1, frames (`u32` length + message) straight on the stream; 2,
 *   blocks (`message/blocks.ts`), a header with flags (compressed) and room for later
 *   per-block fields around the frames of one write;
 * - `acked`: the accepting side opens one uni stream back to the dialler carrying, per class,
 *   the cumulative count of messages it has handled (`ack-stream.ts`).
 *
 * Version 3 is version 2 whose acknowledgements may instead ride in the header of a block the
 * accepting side writes on its own connection to the dialler (`ack-rides.ts`): the dialler
 * names its connection with a session id after each class stream's preamble.
 *
 * An endpoint advertises every protocol it speaks. QUIC lets the dialler ask for only one, so a
 * link dials the newest first and, when the peer refuses it (TLS alert 120,
 * `no_application_protocol`: an older node), the next; it remembers a refusal for
 * `ALPN_REFUSAL_MEMORY_MS`, so redials in that window start with the older one.
 */
export type WireVersion = 1 | 2 | 3

export interface WireProtocol {
  readonly alpn: string
  readonly version: WireVersion
  readonly acked: boolean
}

/** Newest first: the order a dialler tries them in. */
export const WIRE_PROTOCOLS: ReadonlyArray<WireProtocol> = [
  { alpn: "raft-transport/3", version: 3, acked: true },
  { alpn: "raft-transport/2", version: 2, acked: true },
  { alpn: "raft-transport/1", version: 1, acked: false }
]

/** Version 3: bytes of the dialler's session id (`u64` BE) after each class stream's preamble. */
export const SESSION_ID_BYTES = 8

/** Whether acknowledgements ride on the reverse direction's blocks on a connection of `version`. */
export const ridesAcks = (version: WireVersion): boolean => version >= 3

/** The protocols of these framing versions (all by default), newest first. */
export const protocolsOf = (versions?: ReadonlyArray<WireVersion>): ReadonlyArray<WireProtocol> =>
  versions === undefined ? WIRE_PROTOCOLS : WIRE_PROTOCOLS.filter((p) => versions.includes(p.version))

/** The protocol an accepted connection's ALPN names, if it is one of `protocols`. */
export const protocolOfAlpn = (alpn: string, protocols: ReadonlyArray<WireProtocol> = WIRE_PROTOCOLS): WireProtocol | undefined =>
  protocols.find((p) => p.alpn === alpn)

export const alpnBytes = (protocol: WireProtocol): Array<number> => utf8(protocol.alpn)

/** ALPN of wire format version 1 without acknowledgements, for tests and tools that speak only it. */
export const ALPN_TEXT = "raft-transport/1"
export const ALPN: Array<number> = utf8(ALPN_TEXT)

/** Every ALPN an endpoint accepts by default. */
export const ACCEPTED_ALPNS: ReadonlyArray<ReadonlyArray<number>> = WIRE_PROTOCOLS.map(alpnBytes)

/** How a dial to a node that does not speak the asked-for ALPN fails (TLS alert 120). */
export const isAlpnRefusal = (message: string): boolean =>
  /no_?application_?protocol|NoApplicationProtocol|doesn't support any known protocol|error 120\b/i.test(message)

/** How long a peer that refused a protocol is dialled with the older one without trying again. */
export const ALPN_REFUSAL_MEMORY_MS = 60_000

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
  Internal: 7n,
  /** A limit of `[transport.limits]` was reached (connections, streams, timeouts, decode caps). */
  Limit: 8n,
  /** The peer opened a newer connection that took this one's place. */
  Replaced: 9n
} as const

/** A ping is these bytes on a fresh bi stream, echoed back by the receiver. */
export const PING_BYTES: Array<number> = [0x52, 0x54, 0x50, 0x49, 0x4e, 0x47, 0x00, 0x01] // "RTPING\0\1"

/**
 * Bytes asked of the binding per read, by class. The binding makes each read an
 * `Array<number>` on the thread that runs it, the event loop unless `worker_thread` is on.
 * Appends read 12 KiB: V8 makes arrays of 16,384 elements or more the slow way, and a 32 or
 * 64 KiB read cost the receiving process 98-114 ns a byte against 64-71 at 12 KiB
 * (`bench/tools/array-cost.ts`, the raw phase's `BENCH_RAW_READ_BYTES`). The other classes read
 * 8 KiB, so a snapshot stream never holds the loop for more than ~0.5 ms at a time.
 */
export const READ_CHUNK_BYTES: ReadonlyArray<number> = [8 * 1024, 8 * 1024, 12 * 1024, 8 * 1024]

export { irohErrorMessage }

/**
 * A binding call as an interruptible Effect. The binding's promises cannot be cancelled, so
 * interruption just stops waiting (the pending native call ends when its stream, connection
 * or endpoint closes), as for any `Effect.tryPromise`: a read on a quiet stream never holds a
 * scope open. No `AbortSignal` is asked for, since nothing could act on it, and every read,
 * write and counter sample would make one.
 */
export const irohCall = <A, E>(call: () => Promise<A>, onError: (message: string) => E): Effect.Effect<A, E> =>
  Effect.tryPromise({ try: () => call(), catch: (cause) => onError(irohErrorMessage(cause)) })

/** A binding call failed where no more specific error applies (inbound streams, accepts). */
export class IrohFailure extends Data.TaggedError("IrohFailure")<{ readonly message: string }> {
  static of = (message: string): IrohFailure => new IrohFailure({ message })
}
