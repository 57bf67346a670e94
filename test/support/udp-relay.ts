import { Effect, type Scope } from "effect"
import { createSocket, type RemoteInfo, type Socket } from "node:dgram"
import { isIPv6 } from "node:net"
import { splitHostPort } from "../../src/config/schema.ts"

/**
 * A controllable UDP path between loopback sockets, for putting delay, loss and blackouts
 * between two Iroh endpoints (QUIC over UDP).
 *
 * The relay listens on one "front" socket. Each distinct client (source `ip:port`) seen there
 * gets its own "back" socket that talks to the target, so the target sees one stable address
 * per client (the back socket's) and its replies can be routed to the right client. Give
 * `address` to the dialling side as the target's direct address.
 */
export interface UdpRelay {
  /** `127.0.0.1:PORT` or `[::1]:PORT` (see `UdpRelayOptions.front`): the front socket. */
  readonly address: string
  /** One-way delay, applied to every datagram in both directions; 0 forwards at once. */
  readonly setDelay: (ms: number) => Effect.Effect<void>
  /** Drop probability per datagram, 0..1, in both directions. */
  readonly setLoss: (fraction: number) => Effect.Effect<void>
  /** While on, every datagram is dropped (a dark path). */
  readonly setBlackout: (on: boolean) => Effect.Effect<void>
  /** Datagrams sent on, dropped (loss or blackout), and failed sends or socket errors. */
  readonly stats: Effect.Effect<UdpRelayStats>
}

export interface UdpRelayStats {
  readonly forwarded: number
  readonly dropped: number
  /** Send failures and socket errors; the last one is in `lastError`. */
  readonly errors: number
  readonly lastError: string | undefined
  /** Distinct clients seen on the front socket (one back socket each). */
  readonly clients: number
}

export interface UdpRelayOptions {
  /**
   * Address family of the front socket; the back sockets always use the target's. Default:
   * the target's. An IPv6 front before an IPv4 target makes the relayed path look preferable
   * to Iroh, whose path selector counts IPv6 paths 3 ms faster than IPv4 ones (see
   * test/adaptive-relay.test.ts).
   */
  readonly front?: "ipv4" | "ipv6"
}

const formatAddress = (host: string, port: number): string => (isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`)

/** Binds a new UDP socket on `host`, port 0. */
const bindSocket = (type: "udp4" | "udp6", host: string): Effect.Effect<Socket, Error> =>
  Effect.callback<Socket, Error>((resume) => {
    const socket = createSocket(type)
    const onError = (error: Error) => {
      resume(Effect.andThen(closeSocket(socket), Effect.fail(error)))
    }
    socket.once("error", onError)
    socket.bind({ port: 0, address: host }, () => {
      socket.off("error", onError)
      resume(Effect.succeed(socket))
    })
  })

const closeSocket = (socket: Socket): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    try {
      socket.close(() => resume(Effect.void))
    } catch (error) {
      // Already closed is what we want; anything else is a bug worth seeing.
      const code = (error as { readonly code?: unknown }).code
      resume(code === "ERR_SOCKET_DGRAM_NOT_RUNNING" ? Effect.void : Effect.die(error))
    }
  })

/**
 * Starts a relay in front of `target` (`ip:port` of the real endpoint, on loopback). Every
 * socket and pending delayed datagram is released when the scope closes.
 */
export const makeUdpRelay = (target: string, options: UdpRelayOptions = {}): Effect.Effect<UdpRelay, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const hp = splitHostPort(target)
    if (hp === undefined || hp.port === 0) return yield* Effect.fail(new Error(`bad relay target: ${target}`))
    const type = isIPv6(hp.host) ? "udp6" : "udp4"
    const localHost = type === "udp6" ? "::1" : "127.0.0.1"
    const frontType = options.front === undefined ? type : options.front === "ipv6" ? "udp6" : "udp4"
    const frontHost = frontType === "udp6" ? "::1" : "127.0.0.1"

    let delayMs = 0
    let loss = 0
    let blackout = false
    let forwarded = 0
    let dropped = 0
    let errors = 0
    let lastError: string | undefined
    let closed = false
    const timers = new Set<NodeJS.Timeout>()
    const backs = new Map<string, Socket>()

    const recordError = (error: Error) => {
      errors++
      lastError = error.message
    }

    /** Sends after the current delay, unless lost. Equal delays keep order (Node timers are FIFO per duration). */
    const forward = (socket: Socket, message: Buffer, port: number, address: string) => {
      if (blackout || (loss > 0 && Math.random() < loss)) {
        dropped++
        return
      }
      const send = () => {
        if (closed) return
        forwarded++
        socket.send(message, port, address, (error) => {
          if (error) recordError(error)
        })
      }
      if (delayMs <= 0) return send()
      const timer = setTimeout(() => {
        timers.delete(timer)
        send()
      }, delayMs)
      timers.add(timer)
    }

    const front = yield* Effect.acquireRelease(bindSocket(frontType, frontHost), (socket) =>
      Effect.gen(function*() {
        closed = true
        for (const timer of timers) clearTimeout(timer)
        timers.clear()
        yield* Effect.forEach([socket, ...backs.values()], closeSocket, { discard: true, concurrency: "unbounded" })
        backs.clear()
      }))
    front.on("error", recordError)

    /** The back socket for one client: created on its first datagram, replies go to that client. */
    const backFor = (client: RemoteInfo): Socket => {
      const key = formatAddress(client.address, client.port)
      const existing = backs.get(key)
      if (existing !== undefined) return existing
      const back = createSocket(type)
      back.on("error", recordError)
      back.on("message", (message) => forward(front, message, client.port, client.address))
      // Sends issued before the bind completes are queued by Node.
      back.bind({ port: 0, address: localHost })
      backs.set(key, back)
      return back
    }

    front.on("message", (message, client) => {
      if (closed) return
      forward(backFor(client), message, hp.port, hp.host)
    })

    const port = front.address().port
    return {
      address: formatAddress(frontHost, port),
      setDelay: (ms) =>
        Effect.sync(() => {
          delayMs = Math.max(0, ms)
        }),
      setLoss: (fraction) =>
        Effect.sync(() => {
          loss = Math.min(1, Math.max(0, fraction))
        }),
      setBlackout: (on) =>
        Effect.sync(() => {
          blackout = on
        }),
      stats: Effect.sync(() => ({ forwarded, dropped, errors, lastError, clients: backs.size }))
    } satisfies UdpRelay
  })
