/**
 * The CPU a server process spends per request: the node API's server (`src/node/http-server.ts`)
 * against `effect/http`'s `HttpServer` on `@effect/platform-node`, each answering a PUT of
 * 100 bytes the way the API does (the body read under a limit, the answer from an Effect that
 * waits a turn of the event loop, as a proposal does, and a JSON reply). A child process keeps
 * 64 requests in flight with `fetch` for 4 s against each server in turn, over keep-alive
 * connections; the server's own CPU (`process.cpuUsage`) is divided by the requests answered.
 * Each server runs in a fresh process, as a node's does, so neither warms the other's code.
 *
 *   npx tsx bench/tools/http-server-cost.ts [rounds]
 *
 * The rounds alternate the two servers, so drift of the machine falls on both.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ByteSize, Deferred, Effect } from "effect"
import { HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "effect/http"
import { fork } from "node:child_process"
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import { jsonReply, listen, serveRequests } from "../../src/node/http-server.ts"

const CLIENTS = 64
const LOAD_MS = 4000
const MAX_BODY = 4096
const VALUE = "v".repeat(100)

/** Resolves on the next turn of the event loop, as a committed proposal does. */
const answerLater = Effect.flatMap(Deferred.make<number>(), (deferred) =>
  Effect.andThen(
    Effect.sync(() => setImmediate(() => Deferred.doneUnsafe(deferred, Effect.succeed(1)))),
    Deferred.await(deferred)
  ))

const answerBody = (url: string, bytes: number, node: number) => ({ ok: true, op: "put", key: url, previous: null, node, bytes })

/** The client: `CLIENTS` loops of PUTs for `LOAD_MS`; sends the count to the parent. */
const client = async (port: number) => {
  const end = Date.now() + LOAD_MS
  let answered = 0
  const loop = async (c: number) => {
    for (let k = 0; Date.now() < end; k++) {
      const reply = await fetch(`http://127.0.0.1:${port}/kv/client${c}/key${k % 100}`, { method: "PUT", body: VALUE })
      await reply.text()
      answered++
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(c)))
  process.send?.(answered)
}

/** Runs the client against `port`; the server's CPU per answered request, in µs. */
const load = (port: number) =>
  Effect.promise(() =>
    new Promise<number>((resolve, reject) => {
      const client = fork(fileURLToPath(import.meta.url), ["client", String(port)], { execArgv: ["--import", "tsx"] })
      let cpu0: NodeJS.CpuUsage | undefined
      // Counted from the child's first request: its start-up is not the server's work.
      setTimeout(() => void (cpu0 = process.cpuUsage()), 500)
      client.once("message", (answered) => {
        const cpu = process.cpuUsage(cpu0)
        resolve((cpu.user + cpu.system) / Number(answered))
      })
      client.once("error", reject)
    })
  )

const ours = Effect.scoped(Effect.gen(function*() {
  const server = createServer()
  yield* serveRequests(server, { maxBodyBytes: MAX_BODY, answered: () => Effect.void }, (request) =>
    Effect.gen(function*() {
      const bytes = typeof request.body === "string" ? request.body.length : 0
      return jsonReply(answerBody(request.url, bytes, yield* answerLater))
    }))
  const address = yield* Effect.orDie(listen(server, "127.0.0.1", 0))
  return yield* load(Number(address.split(":")[1]))
}))

const effectHttp = Effect.scoped(Effect.gen(function*() {
  const server = yield* Effect.orDie(NodeHttpServer.make(() => createServer(), { host: "127.0.0.1", port: 0 }))
  yield* server.serve(Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const body = yield* Effect.orDie(Effect.provideService(request.text, HttpIncomingMessage.MaxBodySize, ByteSize.bytes(MAX_BODY)))
    return HttpServerResponse.jsonUnsafe(answerBody(request.url, body.length, yield* answerLater))
  }))
  const address = server.address
  return yield* load(address._tag === "UnixPathAddress" ? 0 : address.port)
}))

/** Runs this file as a child with `args`; the number it sends back. */
const child = (args: ReadonlyArray<string>) =>
  new Promise<number>((resolve, reject) => {
    const process_ = fork(fileURLToPath(import.meta.url), args, { execArgv: ["--import", "tsx"] })
    process_.once("message", (n) => resolve(Number(n)))
    process_.once("error", reject)
  })

const role = process.argv[2]
if (role === "client") {
  await client(Number(process.argv[3]))
} else if (role === "ours" || role === "effect") {
  const perRequest = await Effect.runPromise(role === "ours" ? ours : effectHttp)
  if (process.send !== undefined) process.send(perRequest)
  else console.log(`${role}: ${perRequest.toFixed(0)} µs/request`)
} else {
  const rounds = Number(role ?? 3)
  console.log("| round | node API server, µs/request | effect/http HttpServer, µs/request | ratio |")
  console.log("|---|---:|---:|---:|")
  for (let round = 1; round <= rounds; round++) {
    const a = await child(["ours"])
    const b = await child(["effect"])
    console.log(`| ${round} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)} |`)
  }
}
