/** Free loopback ports, picked up front so every node config can name its peers. */
import { ClusterError } from "./errors.ts"
import { Effect } from "effect"
import { createSocket } from "node:dgram"
import { createServer, type Server } from "node:net"

const listenTcp = (): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const portOf = (address: unknown): number =>
  typeof address === "object" && address !== null && "port" in address && typeof address.port === "number" ? address.port : 0

/**
 * `tcp` free TCP ports and `udp` free UDP ports on 127.0.0.1: every socket is held until all
 * are bound (so no port is handed out twice), then closed.
 */
export const freePorts = (tcp: number, udp: number): Effect.Effect<{ tcp: Array<number>; udp: Array<number> }, ClusterError> =>
  Effect.tryPromise({
    try: async () => {
      const servers: Array<Server> = []
      const sockets: Array<ReturnType<typeof createSocket>> = []
      try {
        for (let i = 0; i < tcp; i++) servers.push(await listenTcp())
        for (let i = 0; i < udp; i++) {
          const socket = createSocket("udp4")
          sockets.push(socket)
          await new Promise<void>((resolve, reject) => {
            socket.once("error", reject)
            socket.bind(0, "127.0.0.1", () => resolve())
          })
        }
        return { tcp: servers.map((s) => portOf(s.address())), udp: sockets.map((s) => s.address().port) }
      } finally {
        await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
        await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
      }
    },
    catch: (cause) => new ClusterError({ message: `cannot pick free ports: ${String(cause)}`, cause })
  })
