/**
 * The client API's limits, on a one-node cluster served in this process. A PUT whose command
 * would not fit in one Raft message is refused with 413 `too_large` (docs/node.md, "Value
 * sizes"); the body must not be buffered whole first, or one client declaring (or streaming)
 * gigabytes holds the node's memory and never gets an answer until it has uploaded them all.
 * A body is asked for (`Expect: 100-continue`) only when it is within the limit. A request's
 * budget (`?timeout_ms=`) is capped, so abandoned requests cannot pile up.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { request as httpRequest } from "node:http"
import { connect } from "node:net"
import { MAX_REQUEST_TIMEOUT_MS, serveHttpApi, trackEvents } from "../../src/node/http-api.ts"
import { RaftCluster } from "../support/raft-cluster.ts"
import { RaftNetwork } from "../support/raft-network.ts"

const MAX_COMMAND_BYTES = 4096

interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: unknown
  /** Body bytes the client had written when the answer came. */
  readonly sentBytes: number
}

/** The API of a fresh one-node cluster (it elects itself), for the life of the scope. */
const serve = Effect.gen(function*() {
  const cluster = yield* RaftCluster.make({ ids: [1] })
  const manager = cluster.node(1)
  // Only `peers` and `localAddress` are used by the API: a transport of a network of its own.
  const transport = yield* new RaftNetwork([1]).transport(1)
  const counters = yield* trackEvents(manager)
  const api = yield* serveHttpApi({ bindAddress: "127.0.0.1:0", requestTimeoutMs: 5000, maxCommandBytes: MAX_COMMAND_BYTES }, manager, transport, counters)
  return api.address
})

/**
 * A PUT that writes `chunks` (each `chunkBytes` of "x") one after another, and resolves with the
 * first response, whether or not the body was all sent: it stops writing once answered. Only
 * the last chunk ends the request, so an answer that waits for the whole body of an endless
 * upload never comes (the test's own timeout reports that).
 */
const put = (address: string, key: string, options: { chunkBytes: number; chunks: number; contentLength?: number }) =>
  Effect.callback<Reply, Error>((resume) => {
    const [host, port] = address.split(":")
    const headers: Record<string, string | number> = options.contentLength !== undefined
      ? { "content-length": options.contentLength }
      : { "transfer-encoding": "chunked" }
    const req = httpRequest({ host, port: Number(port), method: "PUT", path: `/kv/${key}`, headers })
    let sentBytes = 0
    let answered = false
    const chunk = Buffer.alloc(options.chunkBytes, "x")
    const writeMore = (left: number): void => {
      if (answered) return
      if (left === 0) return void req.end()
      sentBytes += chunk.length
      // Wait for the socket to take each chunk, so `sentBytes` is what the server could have read.
      req.write(chunk, () => writeMore(left - 1))
    }
    req.on("response", (res) => {
      answered = true
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (d: string) => void (text += d))
      res.on("end", () => {
        req.destroy()
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {
          // Not JSON: keep the text, the assertions say what was expected.
        }
        resume(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body, sentBytes }))
      })
    })
    // The server may close its side once it has answered; only an error before an answer counts.
    req.on("error", (error) => void (!answered && resume(Effect.fail(error))))
    writeMore(options.chunks)
    return Effect.sync(() => req.destroy())
  })

describe("http api: PUT body limit", () => {
  it.live("a value that fits is written; a body over the limit is refused with 413 too_large", () =>
    Effect.gen(function*() {
      const address = yield* serve
      const ok = yield* Effect.eventually(
        Effect.flatMap(put(address, "small", { chunkBytes: 100, chunks: 1, contentLength: 100 }), (r) =>
          r.status === 200 ? Effect.succeed(r) : Effect.fail(new Error(`status ${r.status}`)))
      )
      expect(ok.body).toMatchObject({ ok: true, op: "put", key: "small", node: 1 })
      const over = yield* put(address, "over", { chunkBytes: MAX_COMMAND_BYTES, chunks: 1, contentLength: MAX_COMMAND_BYTES })
      expect(over.status).toBe(413)
      expect(over.body).toMatchObject({ error: "too_large" })
    }).pipe(Effect.scoped))

  it.live("a declared Content-Length over the limit is refused before the body is sent", () =>
    Effect.gen(function*() {
      const address = yield* serve
      // Declares a gibibyte, sends 64 KiB and then waits: the answer must not need the rest.
      const reply = yield* put(address, "huge", { chunkBytes: 16 * 1024, chunks: 1 << 16, contentLength: 1 << 30 })
      expect(reply.status).toBe(413)
      expect(reply.body).toMatchObject({ error: "too_large" })
      // What the sockets on the way buffered (a few MiB on loopback), not the gibibyte.
      expect(reply.sentBytes).toBeLessThan(64 * 1024 * 1024)
    }).pipe(Effect.scoped))

  it.live("a chunked body is read no further than the limit, then refused with 413", () =>
    Effect.gen(function*() {
      const address = yield* serve
      // An upload of a gibibyte with no declared length.
      const reply = yield* put(address, "stream", { chunkBytes: 16 * 1024, chunks: 1 << 16 })
      expect(reply.status).toBe(413)
      expect(reply.body).toMatchObject({ error: "too_large" })
      // What the sockets on the way buffered (a few MiB on loopback), not the gibibyte.
      expect(reply.sentBytes).toBeLessThan(64 * 1024 * 1024)
    }).pipe(Effect.scoped))
})

/** Writes `head` on a raw connection, then `body` once the server answers `100 Continue`; everything it sent back. */
const rawExchange = (address: string, head: string, body: string) =>
  Effect.callback<string, Error>((resume) => {
    const [host, port] = address.split(":")
    const socket = connect(Number(port), host!)
    let received = ""
    socket.setEncoding("utf8")
    socket.on("connect", () => socket.write(head))
    socket.on("data", (chunk: string) => {
      const before = received
      received += chunk
      if (!before.startsWith("HTTP/1.1 100") && received.startsWith("HTTP/1.1 100")) socket.write(body)
      // The final answer is in once a status other than 100 has its whole JSON body.
      if (/HTTP\/1\.1 [2-5]\d\d [^\r]*\r\n[\s\S]*\r\n\r\n\{[\s\S]*\}$/.test(received)) {
        socket.destroy()
        resume(Effect.succeed(received))
      }
    })
    socket.on("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => socket.destroy())
  })

describe("http api: Expect: 100-continue", () => {
  it.live("a body within the limit is asked for and written; one declared over it is refused without asking", () =>
    Effect.gen(function*() {
      const address = yield* serve
      const head = (key: string, length: number) =>
        `PUT /kv/${key} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`
      const ok = yield* Effect.eventually(
        Effect.flatMap(rawExchange(address, head("continued", 5), "hello"), (text) =>
          text.includes(" 200 ") ? Effect.succeed(text) : Effect.fail(new Error(text)))
      )
      expect(ok).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /)
      expect(ok).toContain(`"key":"continued"`)
      const refused = yield* rawExchange(address, head("refused", MAX_COMMAND_BYTES + 1), "")
      expect(refused).toMatch(/^HTTP\/1\.1 413 /)
      expect(refused).toContain(`"error":"too_large"`)
    }).pipe(Effect.scoped))
})

describe("http api: request deadlines", () => {
  it.live("timeout_ms must be decimal digits from 1 to the cap; anything else is a 400 that says so", () =>
    Effect.gen(function*() {
      const address = yield* serve
      const get = (query: string) =>
        Effect.promise(async () => {
          const res = await fetch(`http://${address}/kv/k${query}`)
          return { status: res.status, body: (await res.json()) as unknown }
        })
      for (const bad of ["0", "-5", "1e3", "0x10", "abc", String(MAX_REQUEST_TIMEOUT_MS + 1)]) {
        const reply = yield* get(`?timeout_ms=${bad}`)
        expect(reply.status).toBe(400)
        expect(reply.body).toMatchObject({ error: "bad_request" })
      }
      // Within the cap: answered (404, the key is absent) once the node has elected itself.
      const ok = yield* Effect.eventually(
        Effect.flatMap(get(`?timeout_ms=${MAX_REQUEST_TIMEOUT_MS}`), (r) => r.status === 404 ? Effect.succeed(r) : Effect.fail(new Error(`status ${r.status}`)))
      )
      expect(ok.body).toMatchObject({ error: "not_found" })
    }).pipe(Effect.scoped))
})
