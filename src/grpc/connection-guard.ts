import { lookup } from "node:dns/promises"
import * as net from "node:net"
import type { NodeId } from "../message/types.ts"
import type { InboundLimits } from "../inbound/inbound-limits.ts"

interface Tracked {
  readonly socket: net.Socket
  /** Set by the first admitted call: the peer this connection carries. */
  peer: NodeId | undefined
  timer: NodeJS.Timeout | undefined
}

export type GuardRefusal = "too_many_connections" | "handshake_timeout" | "connection_replaced"

/**
 * The gRPC server's own TCP listener, in front of grpc-js (which takes the sockets through a
 * connection injector): it caps connections in total, closes one that carries no admitted call
 * within `handshake_timeout_ms` (TLS, HTTP/2 and the metadata check included), and keeps at
 * most `max_connections_per_peer` per peer, closing the oldest for a new one. grpc-js alone
 * accepted any number of idle TCP connections, and with the descriptor limit reached the
 * node's next storage write failed with EMFILE.
 */
export class ConnectionGuard {
  // Sockets are closed with `resetAndDestroy`: once HTTP/2 has taken a socket, `destroy()`
  // leaves the connection open (the session holds its handle), and the descriptor with it.
  private readonly byRemote = new Map<string, Tracked>()

  constructor(
    private readonly limits: InboundLimits,
    private readonly onRefused: (reason: GuardRefusal, detail: string) => void
  ) {}

  /** TCP connections open now. */
  get open(): number {
    return this.byRemote.size
  }

  /** Takes a new socket, or closes it when the cap is reached; true when taken. */
  accept(socket: net.Socket): boolean {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`
    if (this.byRemote.size >= this.limits.maxConnections) {
      socket.resetAndDestroy()
      this.onRefused("too_many_connections", `refused a gRPC connection from ${remote}: ${this.limits.maxConnections} are open`)
      return false
    }
    const tracked: Tracked = { socket, peer: undefined, timer: undefined }
    tracked.timer = setTimeout(() => {
      tracked.timer = undefined
      if (tracked.peer !== undefined) return
      socket.resetAndDestroy()
      this.onRefused("handshake_timeout", `closed gRPC connection from ${remote}: no admitted call within ${this.limits.handshakeTimeoutMs} ms`)
    }, this.limits.handshakeTimeoutMs)
    this.byRemote.set(remote, tracked)
    socket.once("close", () => {
      if (tracked.timer !== undefined) clearTimeout(tracked.timer)
      if (this.byRemote.get(remote) === tracked) this.byRemote.delete(remote)
    })
    return true
  }

  /** A call from `peer` was admitted on the connection `remote` (grpc-js `getPeer()`). */
  admitted(remote: string, peer: NodeId): void {
    const tracked = this.byRemote.get(remote)
    if (tracked === undefined || tracked.peer !== undefined) return
    tracked.peer = peer
    if (tracked.timer !== undefined) clearTimeout(tracked.timer)
    tracked.timer = undefined
    const same: Array<Tracked> = []
    for (const t of this.byRemote.values()) if (t.peer === peer) same.push(t)
    // Map order is accept order: the first is the oldest.
    for (let i = 0; i < same.length - this.limits.maxConnectionsPerPeer; i++) {
      same[i]!.socket.resetAndDestroy()
      this.onRefused("connection_replaced", `closed the oldest gRPC connection of peer ${peer}: more than ${this.limits.maxConnectionsPerPeer} are open`)
    }
  }

  /** Closes every connection (server shutdown, after grpc-js had its grace period). */
  destroyAll(): void {
    for (const t of this.byRemote.values()) t.socket.resetAndDestroy()
  }
}

/** `host` and `port` of a bind address, the host without IPv6 brackets. */
export const splitBindAddress = (bindAddress: string): { readonly host: string; readonly port: number } => {
  const colon = bindAddress.lastIndexOf(":")
  const host = bindAddress.slice(0, colon)
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(bindAddress.slice(colon + 1)) }
}

/**
 * Listens on every address `host` resolves to, all on one port (the first picks it when 0 is
 * asked for), as grpc-js's own bind does: `localhost` is 127.0.0.1 and ::1. An address that
 * cannot be bound (no IPv6 in a container) is skipped while another one binds.
 */
export const listenAll = async (
  host: string,
  port: number,
  onSocket: (socket: net.Socket) => void
): Promise<{ readonly port: number; readonly servers: ReadonlyArray<net.Server> }> => {
  const addresses = net.isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((a) => a.address)
  const servers: Array<net.Server> = []
  let bound = port
  let firstError: unknown
  for (const address of addresses) {
    const server = net.createServer(onSocket)
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen({ host: address, port: bound }, () => {
          server.off("error", reject)
          resolve()
        })
      })
    } catch (error) {
      firstError ??= error
      continue
    }
    servers.push(server)
    const actual = server.address()
    if (bound === 0 && typeof actual === "object" && actual !== null) bound = actual.port
  }
  if (servers.length === 0) throw firstError ?? new Error(`${host} resolves to no address`)
  return { port: bound, servers }
}
