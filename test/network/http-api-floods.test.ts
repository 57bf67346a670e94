/**
 * The HTTP API against clients that hold connections instead of sending requests: slow
 * headers, unfinished bodies, silent connections past the cap, kept-alive connections left
 * idle, bytes that are not HTTP. Idle connections are file descriptors the node's storage then
 * cannot get, so each is closed by its limit and counted exactly under its reason in
 * `raft_node_http_refused_total`, and a legitimate client is served throughout (or, while the
 * cap is full, as soon as the held connections are closed). A PUT asking for a protocol
 * upgrade is refused: its body, read from the raw socket, would end wherever a timeout cut it.
 *
 * A one-node cluster serves the API in this process over real loopback sockets; the attackers
 * are raw TCP sockets. Times are lower bounds (a server cannot close early) or generous upper
 * bounds on something that would otherwise never happen.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect, type Socket } from "node:net"
import { serveHttpApi, trackEvents } from "../../src/node/http-api.ts"
import { type HttpLimits, httpRefused } from "../../src/node/http-limits.ts"
import { eventually } from "../support/eventually.ts"
import { counter } from "../support/metrics.ts"
import { RaftCluster } from "../support/raft-cluster.ts"
import { RaftNetwork } from "../support/raft-network.ts"

const LIMITS: HttpLimits = { headerTimeoutMs: 400, bodyTimeoutMs: 800, idleTimeoutMs: 300, maxConnections: 40 }
const FLOOD = 30

/** The API of a fresh one-node cluster with `LIMITS`, for the life of the scope. */
const serve = Effect.gen(function*() {
  const cluster = yield* RaftCluster.make({ ids: [1] })
  const manager = cluster.node(1)
  const transport = yield* new RaftNetwork([1]).transport(1)
  const counters = yield* trackEvents(manager)
  const api = yield* serveHttpApi(
    { bindAddress: "127.0.0.1:0", requestTimeoutMs: 5000, maxCommandBytes: 4096, limits: LIMITS },
    manager,
    transport,
    counters
  )
  return api.address
})

const refused = (reason: string) => counter(httpRefused, { reason })

interface Raw {
  readonly socket: Socket
  /** Everything the server sent. */
  received: string
  /** When the server closed it (ms since the test's start); undefined while open. */
  closedAt: number | undefined
}

/** Raw connections that `behave` once connected; closed with the scope. */
const openRaw = (address: string, count: number, start: number, behave: (socket: Socket) => void) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const [host, port] = address.split(":")
      return Array.from({ length: count }, (): Raw => {
        const socket = connect(Number(port), host!)
        const raw: Raw = { socket, received: "", closedAt: undefined }
        socket.setEncoding("utf8")
        socket.on("connect", () => behave(socket))
        socket.on("data", (d: string) => void (raw.received += d))
        socket.on("error", () => {}) // a reset by the server is what some tests expect
        socket.on("close", () => void (raw.closedAt = Date.now() - start))
        return raw
      })
    }),
    (raws) => Effect.sync(() => raws.forEach((r) => r.socket.destroy()))
  )

const allClosed = (raws: ReadonlyArray<Raw>) => raws.every((r) => r.closedAt !== undefined)

/** A legitimate client: a PUT then a GET of it, each on a fresh connection; both must succeed. */
const legitimate = (address: string, n: number) =>
  Effect.promise(async () => {
    const put = await fetch(`http://${address}/kv/k${n}`, { method: "PUT", body: `v${n}` })
    const get = await fetch(`http://${address}/kv/k${n}`)
    return { put: put.status, get: get.status, value: ((await get.json()) as { value?: string }).value }
  })

/** Runs the legitimate client over and over until `done`; every round must succeed. */
const serveWhile = (address: string, done: () => boolean) =>
  Effect.gen(function*() {
    let rounds = 0
    while (!done() || rounds === 0) {
      const r = yield* legitimate(address, rounds)
      expect(r).toEqual({ put: 200, get: 200, value: `v${rounds}` })
      rounds++
    }
    return rounds
  })

/** Waits for the one-node cluster to answer a write (it elects itself first). */
const ready = (address: string) =>
  eventually("the node answers", Effect.promise(() => fetch(`http://${address}/kv/warmup`, { method: "PUT", body: "x" }).then((r) => r.status)), (s) => s === 200)

/** The API, once the node answers writes. */
const serveReady = Effect.tap(serve, ready)

/** The status of a GET of `key`. */
const getStatus = (address: string, key: string) => Effect.promise(() => fetch(`http://${address}/kv/${key}`).then((r) => r.status))

describe("http api: connection floods", () => {
  /**
   * `FLOOD` connections that send `head` and then a byte every 50 ms, forever (no inactivity
   * timer would ever fire), while a legitimate client runs: each must be closed with 408 no
   * sooner than `limitMs`, and counted once under `reason`.
   */
  const trickleFlood = (address: string, head: string, reason: string, limitMs: number) =>
    Effect.gen(function*() {
      const before = yield* refused(reason)
      const start = Date.now()
      const raws = yield* openRaw(address, FLOOD, start, (socket) => {
        socket.write(head)
        const timer = setInterval(() => socket.write("x"), 50)
        socket.on("close", () => clearInterval(timer))
      })
      const rounds = yield* serveWhile(address, () => allClosed(raws))
      expect(rounds).toBeGreaterThan(0)
      for (const r of raws) {
        expect(r.closedAt!).toBeGreaterThanOrEqual(limitMs)
        expect(r.received).toMatch(/^HTTP\/1\.1 408 /)
      }
      yield* eventually(`${reason} counted`, refused(reason), (n) => n - before >= FLOOD)
      expect((yield* refused(reason)) - before).toBe(FLOOD)
    })

  it.live("slow headers: every connection is closed at the header timeout with 408, counted; a client is served meanwhile", () =>
    Effect.gen(function*() {
      const address = yield* serveReady
      yield* trickleFlood(address, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", "header_timeout", LIMITS.headerTimeoutMs)
    }).pipe(Effect.scoped))

  it.live("unfinished bodies: every connection is closed at the body timeout with 408, counted; a client is served meanwhile", () =>
    Effect.gen(function*() {
      const address = yield* serveReady
      // Declares 1000 bytes: at a byte per 50 ms the body never ends in time.
      yield* trickleFlood(address, "PUT /kv/held HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", "body_timeout", LIMITS.bodyTimeoutMs)
      // None of them was written.
      expect(yield* getStatus(address, "held")).toBe(404)
    }).pipe(Effect.scoped))

  it.live("silent connections past the cap are closed on accept, the rest at the header timeout; then a client is served", () =>
    Effect.gen(function*() {
      const address = yield* serveReady
      // Fetch's pool may keep the warm-up connection: wait until the server closed it as idle.
      yield* Effect.sleep(LIMITS.idleTimeoutMs + 1500)
      const capBefore = yield* refused("connection_cap")
      const headerBefore = yield* refused("header_timeout")
      const start = Date.now()
      const extra = 25
      const raws = yield* openRaw(address, LIMITS.maxConnections + extra, start, () => {})
      yield* eventually("connection_cap counted", refused("connection_cap"), (n) => n - capBefore >= extra)
      yield* eventually("every flood connection closed", Effect.sync(() => raws.filter((r) => r.closedAt === undefined).length), (open) => open === 0)
      expect((yield* refused("connection_cap")) - capBefore).toBe(extra)
      yield* eventually("header_timeout counted", refused("header_timeout"), (n) => n - headerBefore >= LIMITS.maxConnections)
      expect((yield* refused("header_timeout")) - headerBefore).toBe(LIMITS.maxConnections)
      // The ones past the cap went at once; the others held their place for the header timeout.
      const closedAt = raws.map((r) => r.closedAt!).sort((a, b) => a - b)
      expect(closedAt[extra - 1]!).toBeLessThan(LIMITS.headerTimeoutMs)
      expect(closedAt[extra]!).toBeGreaterThanOrEqual(LIMITS.headerTimeoutMs)
      expect(yield* legitimate(address, 0)).toEqual({ put: 200, get: 200, value: "v0" })
    }).pipe(Effect.scoped))

  it.live("a kept-alive connection left idle is closed after the idle timeout, counted", () =>
    Effect.gen(function*() {
      const address = yield* serveReady
      const before = yield* refused("idle_timeout")
      const start = Date.now()
      const [raw] = yield* openRaw(address, 1, start, (socket) => socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
      yield* eventually("the idle connection closed", Effect.sync(() => raw!.closedAt), (at) => at !== undefined)
      expect(raw!.received).toMatch(/^HTTP\/1\.1 200 /)
      expect(raw!.closedAt!).toBeGreaterThanOrEqual(LIMITS.idleTimeoutMs)
      yield* eventually("idle_timeout counted", refused("idle_timeout"), (n) => n - before >= 1)
      // Fetch's own kept-alive connections may be closed as idle too, so only a lower bound.
      expect((yield* refused("idle_timeout")) - before).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.scoped))

  it.live("a PUT that asks for a protocol upgrade is refused with 400 and writes nothing, even when its body is cut off", () =>
    Effect.gen(function*() {
      const address = yield* serveReady
      const [raw] = yield* openRaw(address, 1, Date.now(), (socket) =>
        socket.write("PUT /kv/upgraded HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 1000\r\n\r\nabc"))
      yield* eventually("the upgrade request closed", Effect.sync(() => raw!.closedAt), (at) => at !== undefined)
      expect(raw!.received).toMatch(/^HTTP\/1\.1 400 /)
      expect(yield* getStatus(address, "upgraded")).toBe(404)
    }).pipe(Effect.scoped))

  it.live("bytes that are not HTTP get 400 and a close, counted as malformed", () =>
    Effect.gen(function*() {
      const address = yield* serveReady
      const before = yield* refused("malformed")
      const raws = yield* openRaw(address, 10, Date.now(), (socket) => socket.write("\x00\x01 NOT HTTP AT ALL\r\n\r\n"))
      yield* eventually("every garbage connection closed", Effect.sync(() => allClosed(raws)), (closed) => closed)
      for (const r of raws) expect(r.received).toMatch(/^HTTP\/1\.1 400 /)
      yield* eventually("malformed counted", refused("malformed"), (n) => n - before >= 10)
      expect((yield* refused("malformed")) - before).toBe(10)
      expect(yield* legitimate(address, 0)).toEqual({ put: 200, get: 200, value: "v0" })
    }).pipe(Effect.scoped))
})
