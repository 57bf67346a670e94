/**
 * The node API's HTTP/1.1 server: Node's `http.Server` (with `http-limits.ts` applied), the
 * request's body read with Node's own events, then one fiber per request, and its reply
 * written straight to Node's response.
 *
 * Why not `effect/http`'s `HttpServer`: there every request gets a request object with
 * `Headers`, its body comes through an Effect `Stream` over the Node stream, and the fiber
 * suspends and resumes around each read; under load that wrapping cost more than Node's own
 * parsing and writing. The API needs little of a server: the method, the URL, a few headers,
 * a body up to a limit, and a JSON or text reply. `bench/tools/http-server-cost.ts` measures
 * the difference (bench/README.md, "Cluster").
 *
 * - The body is read before the handler runs, so the handler's fiber starts with all it needs
 *   and suspends only on the work it asks for (for a PUT: the proposal).
 * - A body over `maxBodyBytes` is not read: by its declared length at once, else as soon as
 *   that many bytes have arrived. The handler sees `BodyTooLarge` and answers; the reply says
 *   `connection: close` and the connection is then closed (half closed, destroyed after a grace
 *   period), not drained.
 * - `Expect: 100-continue` is answered only for a body within the limit, so a body refused by
 *   its declared length is never sent.
 * - A request asking for a protocol upgrade is refused with 400 and its connection closed: its
 *   body, read from the raw socket, would end wherever the connection ended.
 * - The request's fiber is interrupted when the client goes away before its reply.
 * - A defect in a handler is logged and answered 500; nothing reaches Node's callbacks.
 * - On shutdown, requests in flight are interrupted and every connection is closed.
 */
import { Cause, Data, Effect, FiberSet, type Scope } from "effect"
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from "node:http"

/** The body was over the server's limit; it was not read (further). */
export class BodyTooLarge extends Data.Class<{
  /** The limit, `maxBytes` of `serveRequests`. */
  readonly maxBytes: number
  /** The declared `content-length`, when that is how it was refused. */
  readonly declared: number | undefined
}> {
  get message(): string {
    return this.declared !== undefined ? `the body is ${this.declared} bytes` : `the body is over ${this.maxBytes} bytes`
  }
}

/** A request as the API's handlers see it. */
export interface HttpRequest {
  readonly method: string
  /** Path and query, as sent. */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  /** The body as UTF-8 text (invalid sequences become U+FFFD); empty when there was none. */
  readonly body: string | BodyTooLarge
}

/** A whole reply: status, body and its content type, extra headers. */
export interface HttpReply {
  readonly status: number
  readonly contentType: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
}

export const jsonReply = (body: unknown, status = 200, headers?: Readonly<Record<string, string>>): HttpReply => ({
  status,
  contentType: "application/json",
  body: JSON.stringify(body),
  ...(headers !== undefined ? { headers } : {})
})

export const textReply = (body: string, contentType = "text/plain", status = 200): HttpReply => ({ status, contentType, body })

const INTERNAL_ERROR = jsonReply({ error: "internal", message: "the request failed inside the node; see its log" }, 500)
// Closed whatever the body: what a client sends after asking to upgrade need not be HTTP.
const UPGRADE_REFUSED = jsonReply({ error: "bad_request", message: "protocol upgrades are not supported" }, 400, {
  connection: "close"
})

/** Time a client gets to read a reply after its connection is half-closed, before it is destroyed. */
const CLOSE_GRACE_MS = 500

const closeConnection = (req: IncomingMessage) => {
  const socket = req.socket
  if (socket.destroyed) return
  socket.end()
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS)
  socket.once("close", () => clearTimeout(timer))
}

const writeReply = (req: IncomingMessage, res: ServerResponse, reply: HttpReply): void => {
  if (res.writableEnded || res.destroyed) return
  // Bodies are read before the handler runs, so a request still incomplete here is a refused
  // upload (or an upgrade): its connection is closed after the reply, not drained for reuse.
  const closing = !req.complete
  if (closing) {
    res.once("finish", () => {
      if (!req.complete) closeConnection(req)
    })
  }
  res.writeHead(reply.status, {
    "content-type": reply.contentType,
    "content-length": Buffer.byteLength(reply.body),
    ...(closing ? { connection: "close" } : {}),
    ...reply.headers
  })
  // Node drops the body of a reply to HEAD itself, and keeps its content-length.
  res.end(reply.body)
}

/** Binds `server` to `host:port` (port 0: a free one); the address actually bound, `host:port` (`[v6]:port`). */
export const listen = (server: Server, host: string, port: number): Effect.Effect<string, Error> =>
  Effect.callback<string, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      const bound = server.address()
      if (bound === null || typeof bound === "string") return resume(Effect.succeed(String(bound)))
      resume(Effect.succeed(bound.family === "IPv6" ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`))
    })
  })

/** How `serveRequests` serves. */
export interface ServeOptions {
  /** Bodies over this reach the handler as `BodyTooLarge`, unread. */
  readonly maxBodyBytes: number
  /** Runs after every reply written, the server's own refusals included (to count them). */
  readonly answered: (method: string, status: number) => Effect.Effect<void>
}

/**
 * Answers every request on `server` with `handle` until the scope closes, then closes the
 * server and its connections. Bind it with `listen` afterwards, so no request finds it
 * unserved.
 */
export const serveRequests = (
  server: Server,
  options: ServeOptions,
  handle: (request: HttpRequest) => Effect.Effect<HttpReply>
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Closed after the fibers' set below (finalizers run in reverse): in-flight requests are
    // interrupted first, then their connections go with the rest.
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        server.off("request", onRequest)
        server.off("checkContinue", onContinue)
        if (!server.listening) return resume(Effect.void)
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    )
    const run = yield* FiberSet.makeRuntime<never, void, never>()

    const answer = (req: IncomingMessage, res: ServerResponse, request: HttpRequest) =>
      handle(request).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.interrupt
            : Effect.as(Effect.logError(`HTTP ${request.method} ${request.url} failed`, cause), INTERNAL_ERROR)
        ),
        Effect.flatMap((reply) => respond(req, res, reply))
      )
    const respond = (req: IncomingMessage, res: ServerResponse, reply: HttpReply) =>
      Effect.andThen(Effect.sync(() => writeReply(req, res, reply)), options.answered(req.method ?? "GET", reply.status))

    const start = (req: IncomingMessage, res: ServerResponse, body: string | BodyTooLarge) => {
      const request: HttpRequest = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body }
      const fiber = run(answer(req, res, request))
      if (fiber.pollUnsafe() === undefined) {
        res.on("close", () => {
          if (!res.writableEnded) fiber.interruptUnsafe()
        })
      }
    }

    // The handlers are inline, not named closures: under tsx, which keeps function names, each
    // named closure made per request costs a property definition.
    const receive = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean) => {
      if (req.headers["upgrade"] !== undefined) return void run(respond(req, res, UPGRADE_REFUSED))
      const declaredHeader = req.headers["content-length"]
      const declared = declaredHeader === undefined ? undefined : Number(declaredHeader)
      if (declared !== undefined && declared > options.maxBodyBytes) {
        return start(req, res, new BodyTooLarge({ maxBytes: options.maxBodyBytes, declared }))
      }
      if (expectsContinue) res.writeContinue()
      const chunks: Array<Buffer> = []
      let size = 0
      let refused = false
      req.on("data", (chunk: Buffer) => {
        if (refused) return
        size += chunk.length
        if (size <= options.maxBodyBytes) return void chunks.push(chunk)
        refused = true
        req.pause()
        start(req, res, new BodyTooLarge({ maxBytes: options.maxBodyBytes, declared: undefined }))
      })
      // A body cut off by the client (a `close` before the end, or an error) has nobody to answer.
      req.on("end", () => {
        if (!refused) start(req, res, size === 0 ? "" : Buffer.concat(chunks, size).toString("utf8"))
      })
    }
    function onRequest(req: IncomingMessage, res: ServerResponse) {
      receive(req, res, false)
    }
    function onContinue(req: IncomingMessage, res: ServerResponse) {
      receive(req, res, true)
    }
    server.on("request", onRequest)
    server.on("checkContinue", onContinue)
  })
