/**
 * What a client of the HTTP API can make the node hold, bounded. Every connection is a file
 * descriptor, and the descriptors are shared with the Raft storage: a node out of them fails
 * its next snapshot or hard-state write and stops (fail-stop). So no client may hold one for
 * long without sending a whole request:
 *
 * - `headerTimeoutMs`: the request line and headers must arrive within this time of the
 *   connection opening (on a kept-alive connection, of the next request's first byte); a
 *   connection that sends nothing is closed too. 408, closed.
 * - `bodyTimeoutMs`: the whole request, headers and body, must arrive within this time (an
 *   unfinished body). 408, closed. Once the request is in, the answer may take as long as the
 *   request's own deadline (`?timeout_ms=`).
 * - `idleTimeoutMs`: a kept-alive connection with no request in flight is closed after this
 *   (Node adds one second, `keepAliveTimeoutBuffer`, so a client reusing it at the last moment
 *   does not race the close).
 * - `maxConnections`: connections beyond this are closed as soon as they are accepted.
 *
 * Each is Node's own `http.Server` mechanism (`headersTimeout`, `requestTimeout`,
 * `keepAliveTimeout`, `maxConnections`); this module sets them, checks the timeouts often
 * enough to hold them within a quarter of their value, and counts every close in
 * `raft_node_http_refused_total{reason}` (`header_timeout`, `body_timeout`, `idle_timeout`,
 * `connection_cap`, `malformed` for requests Node cannot parse), logged at most once per reason
 * per `REFUSAL_LOG_INTERVAL_MS` (idle closes at debug level: they are routine).
 */
import type { Effect } from "effect"
import { Metric } from "effect"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Duplex } from "node:stream"
import { makeRefusalLog } from "../metrics/refusal-log.ts"

export interface HttpLimits {
  readonly headerTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly maxConnections: number
}

/** The `[http]` defaults (docs/node.md): generous for a client on a slow link, short for a held socket. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 5_000,
  maxConnections: 256
}

export type HttpRefusal = "header_timeout" | "body_timeout" | "idle_timeout" | "connection_cap" | "malformed"

export const httpRefused = Metric.counter("raft_node_http_refused_total", {
  description: "HTTP API connections closed by a limit, by reason (header_timeout, body_timeout, idle_timeout, " +
    "connection_cap, malformed)"
})

const REFUSAL_LOG_INTERVAL_MS = 10_000

/** Node checks its header and request timeouts only this often; at most a quarter of the shorter one. */
const checkIntervalMs = (limits: HttpLimits): number =>
  Math.max(10, Math.min(1000, Math.floor(Math.min(limits.headerTimeoutMs, limits.bodyTimeoutMs) / 4)))

/** What Node itself answers before closing (`_http_server.js`), so clients see the same. */
const RESPONSES: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n",
  HPE_HEADER_OVERFLOW: "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n"
}
const BAD_REQUEST = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"

const remoteOf = (socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }) =>
  `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`

/**
 * A Node HTTP server with `limits` applied. `run` forks the counting and logging of each close
 * (Node's events are plain callbacks); it must run in the server's scope.
 */
export const limitedHttpServer = (limits: HttpLimits, run: (effect: Effect.Effect<void>) => void): Server => {
  const refusals = makeRefusalLog<HttpRefusal>({
    counter: httpRefused,
    intervalMs: REFUSAL_LOG_INTERVAL_MS,
    levels: { idle_timeout: "Debug" }
  })
  const server = createServer({
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout: limits.bodyTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: checkIntervalMs(limits)
  })
  server.maxConnections = limits.maxConnections

  // The latest request on each connection: a timeout after its headers is a body timeout, and
  // no error response may be written into a response already under way.
  const latest = new WeakMap<Duplex, { readonly req: IncomingMessage; readonly res: ServerResponse }>()
  const track = (req: IncomingMessage, res: ServerResponse) => void latest.set(req.socket, { req, res })
  server.on("request", track)
  server.on("checkContinue", track)

  server.on("drop", (data?: { readonly remoteAddress?: string; readonly remotePort?: number }) =>
    run(refusals.refuse(
      "connection_cap",
      `closed an HTTP connection from ${remoteOf(data ?? {})}: ${limits.maxConnections} connections open (max_connections)`
    )))

  server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex & { remoteAddress?: string; remotePort?: number }) => {
    // The client went away: nothing was refused.
    if (error.code === "ECONNRESET" || error.code === "EPIPE") return void socket.destroy()
    const last = latest.get(socket)
    const timedOut = error.code === "ERR_HTTP_REQUEST_TIMEOUT"
    const reason: HttpRefusal = !timedOut
      ? "malformed"
      : last !== undefined && !last.req.complete
      ? "body_timeout"
      : "header_timeout"
    const limit = reason === "header_timeout"
      ? `no whole header within ${limits.headerTimeoutMs} ms (header_timeout_ms)`
      : reason === "body_timeout"
      ? `no whole request within ${limits.bodyTimeoutMs} ms (body_timeout_ms)`
      : `unparsable request (${error.code ?? error.message})`
    run(refusals.refuse(reason, `closed an HTTP connection from ${remoteOf(socket)}: ${limit}`))
    const inFlight = last !== undefined && last.res.headersSent && !last.res.writableEnded
    if (socket.writable && !inFlight) socket.write(RESPONSES[error.code ?? ""] ?? BAD_REQUEST)
    socket.destroy()
  })

  // With `server.timeout` 0 (Node's default), only `keepAliveTimeout` arms a socket's timeout:
  // this is a kept-alive connection with no request. Listening means closing it here.
  server.on("timeout", (socket: Duplex & { remoteAddress?: string; remotePort?: number }) => {
    run(refusals.refuse("idle_timeout", `closed an idle HTTP connection from ${remoteOf(socket)} after ${limits.idleTimeoutMs} ms (idle_timeout_ms)`))
    socket.destroy()
  })
  return server
}
