/**
 * The calls into `@number0/iroh` itself, shared by the in-thread host and the worker thread
 * (`worker-main.ts`). Node loads this file natively in the worker, so it imports nothing but
 * the binding (through `native.ts`) and keeps to erasable TypeScript.
 */
import iroh from "./native.ts"
import type { DialAddress, RelayModeSetting } from "./addressing.ts"

const { Endpoint, EndpointAddr, EndpointId, EndpointTicket, RelayMode, presetMinimal, presetN0 } = iroh

export type NativeEndpoint = InstanceType<typeof Endpoint>
export type NativeConnection = Awaited<ReturnType<NativeEndpoint["connect"]>>
export type NativeSendStream = Awaited<ReturnType<NativeConnection["openUni"]>>
export type NativeRecvStream = Awaited<ReturnType<NativeConnection["acceptUni"]>>
export type NativeIncoming = NonNullable<Awaited<ReturnType<NativeEndpoint["acceptNext"]>>>

export interface BindOptions {
  readonly bindAddress: string
  readonly secretKey: ReadonlyArray<number> | undefined
  readonly relayMode: RelayModeSetting
  /** What a dial asks for unless it names another. */
  readonly alpn: ReadonlyArray<number>
  /** What inbound connections may ask for (every wire version this node speaks). */
  readonly acceptAlpns: ReadonlyArray<ReadonlyArray<number>>
}

/**
 * With relays disabled (the default) the minimal preset is used: no relay, no discovery,
 * nothing leaves the configured addresses. Only `relay_mode = "default"` applies the n0
 * preset with its public services.
 */
export const bindEndpoint = (options: BindOptions): Promise<NativeEndpoint> => {
  const builder = Endpoint.builder()
  const relay = options.relayMode
  if (relay._tag === "default") presetN0(builder)
  else presetMinimal(builder)
  builder.relayMode(
    relay._tag === "default" ? RelayMode.defaultMode()
    : relay._tag === "custom" ? RelayMode.customFromUrls([...relay.urls])
    : RelayMode.disabled()
  )
  builder.alpns(options.acceptAlpns.map((alpn) => [...alpn]))
  builder.bindAddr(options.bindAddress)
  if (options.secretKey !== undefined) builder.secretKey([...options.secretKey])
  return builder.bind()
}

export interface EndpointFacts {
  readonly endpointId: string
  readonly directAddresses: ReadonlyArray<string>
  readonly ticket: string
}

/** Direct `ip:port` addresses peers can dial: the endpoint's own, else its bound sockets. */
export const directAddressesOf = (endpoint: NativeEndpoint): ReadonlyArray<string> => {
  const fromAddr = endpoint.addr().directAddresses()
  return fromAddr.length > 0
    ? fromAddr
    : endpoint.boundSockets().filter((a) => !a.startsWith("[::]") && !a.startsWith("0.0.0.0"))
}

export const ticketOf = (endpoint: NativeEndpoint): string => EndpointTicket.fromAddr(endpoint.addr()).toString()

export const endpointFacts = (endpoint: NativeEndpoint): EndpointFacts => ({
  endpointId: endpoint.id().toString(),
  directAddresses: directAddressesOf(endpoint),
  ticket: ticketOf(endpoint)
})

/** Completes an inbound handshake; `alpn` is what the dialler asked for. */
export const completeHandshake = async (incoming: NativeIncoming): Promise<{ readonly connection: NativeConnection; readonly alpn: string }> => {
  const accepting = await incoming.accept()
  const alpn = new TextDecoder().decode(Uint8Array.from(await accepting.alpn()))
  return { connection: await accepting.connect(), alpn }
}

/** A uni stream with a QUIC send priority (higher goes first). */
export const openPrioritisedUni = async (connection: NativeConnection, priority: number): Promise<NativeSendStream> => {
  const stream = await connection.openUni()
  await stream.setPriority(priority)
  return stream
}

export const closeConnection = (connection: NativeConnection, code: bigint, reason: string): void =>
  connection.close(code, Array.from(new TextEncoder().encode(reason)))

/** Where to dial: the ticket if there is one (plus any extra addresses), else id and addresses. */
export const endpointAddrOf = (dial: DialAddress): InstanceType<typeof EndpointAddr> => {
  if (dial.ticket !== undefined) {
    const fromTicket = EndpointTicket.fromString(dial.ticket).endpointAddr()
    if (dial.addresses.length === 0) return fromTicket
    return new EndpointAddr(fromTicket.id(), fromTicket.relayUrl(), [...fromTicket.directAddresses(), ...dial.addresses])
  }
  return new EndpointAddr(EndpointId.fromString(dial.endpointId), null, [...dial.addresses])
}

/** UDP datagrams sent and received on a connection so far, over all its paths. */
export interface ConnectionActivity {
  readonly txDatagrams: number
  readonly rxDatagrams: number
  /** QUIC's own smoothed RTT (measured in the network stack, free of event-loop delays). */
  readonly rttMs: number | undefined
}

/**
 * The connection's datagram counters: QUIC acknowledges every ack-eliciting packet within its
 * max ack delay (25 ms), in the peer's Rust stack and not its JS thread, so a connection that
 * sent and received nothing back for much longer than a round trip has a dark path.
 */
export const activityOf = (connection: NativeConnection): ConnectionActivity => {
  const stats = connection.stats()
  return { txDatagrams: stats.udpTxDatagrams, rxDatagrams: stats.udpRxDatagrams, rttMs: connection.rtt() ?? undefined }
}

/** One ping: a fresh bi stream carrying `bytes`, which the peer echoes back. */
export const pingOnce = async (connection: NativeConnection, bytes: ReadonlyArray<number>): Promise<void> => {
  const bi = await connection.openBi()
  await bi.send.writeAll([...bytes])
  await bi.send.finish()
  const echo = await bi.recv.readExact(bytes.length)
  if (echo.length !== bytes.length) throw new Error("short ping echo")
}

export interface PingAnswerLimits {
  readonly maxConcurrent: number
  readonly timeoutMs: number
}

/** Stops a ping stream the answerer will not (or no longer) serve. */
const PING_REFUSED = 9n

export interface PingAnswers {
  readonly answered: number
  readonly failed: number
  /** Pings stopped because `maxConcurrent` were already being answered. */
  readonly refused: number
  /** Why the last failed answer failed. */
  readonly lastFailure: string | undefined
}

/**
 * Echoes every ping on `connection` until it closes. Each answer runs on its own so a peer
 * that never finishes one ping cannot hold up the next; failures are counted for the caller
 * to report, since a ping answer that fails only means the pinger will time out.
 */
export const answerPings = async (
  connection: NativeConnection,
  pingLength: number,
  limits: PingAnswerLimits
): Promise<PingAnswers> => {
  let answered = 0
  let failed = 0
  let refused = 0
  let active = 0
  let lastFailure: string | undefined
  type Bi = Awaited<ReturnType<NativeConnection["acceptBi"]>>
  const stop = (bi: Bi) => {
    bi.recv.stop(PING_REFUSED).catch(() => undefined)
    bi.send.reset(PING_REFUSED).catch(() => undefined)
  }
  const answer = async (bi: Bi) => {
    active++
    // A ping whose bytes never come must not hold its stream (and a slot) forever.
    const timer = setTimeout(() => stop(bi), limits.timeoutMs)
    try {
      const bytes = await bi.recv.readExact(pingLength)
      await bi.send.writeAll(bytes)
      await bi.send.finish()
      answered++
    } catch (error) {
      failed++
      lastFailure = messageOf(error)
    } finally {
      clearTimeout(timer)
      active--
    }
  }
  while (true) {
    let bi: Awaited<ReturnType<NativeConnection["acceptBi"]>>
    try {
      bi = await connection.acceptBi()
    } catch (error) {
      return { answered, failed, refused, lastFailure }
    }
    if (active >= limits.maxConcurrent) {
      refused++
      stop(bi)
      continue
    }
    void answer(bi) // settles on its own and never rejects: failures are counted above
  }
}

/**
 * The binding's errors carry a Rust backtrace after the first lines when the user turned
 * them on (`native.ts`); keep the message.
 */
export const messageOf = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : String(cause)
  const cut = text.indexOf("\n\nStack backtrace:")
  return (cut === -1 ? text : text.slice(0, cut)).replace(/\s*\(\/root\/\.cargo[^)]*\)/g, "").trim()
}
