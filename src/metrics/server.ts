import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, type Scope } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import { splitHostPort } from "../config/schema.ts"
import { MetricsServerFailed } from "./errors.ts"
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts"
import { describeCause } from "../domain/errors.ts"

export interface MetricsServer {
  /** The address actually bound, `host:port` (`[v6]:port` for IPv6); the real port when 0 was asked for. */
  readonly address: string
}

const ROUTES = new Set(["/metrics", "/health"])

/** `GET /metrics` (Prometheus text), `GET /health` (`ok`); 405 for other methods on those, 404 elsewhere. */
const app = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = request.url.split("?", 1)[0] ?? ""
  if (!ROUTES.has(path)) return HttpServerResponse.text("not found\n", { status: 404 })
  if (request.method !== "GET" && request.method !== "HEAD") {
    return HttpServerResponse.text("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
  }
  if (path === "/health") return HttpServerResponse.text("ok")
  const body = yield* renderPrometheus
  return HttpServerResponse.text(body, { contentType: PROMETHEUS_CONTENT_TYPE })
})

/**
 * Serves the metrics registry over HTTP on `bindAddress` (`host:port`, `[v6]:port`; port 0 picks
 * a free port) until the scope closes. The scrape renders the registry of the context this
 * was started in, so a test or embedding application that provides its own
 * `Metric.MetricRegistry` sees its own metrics.
 */
export const serveMetrics = (bindAddress: string): Effect.Effect<MetricsServer, MetricsServerFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const hp = splitHostPort(bindAddress)
    if (hp === undefined) {
      return yield* new MetricsServerFailed({
        address: bindAddress,
        reason: "expected \"host:port\" (IPv4, hostname or [IPv6], port 0-65535)",
        cause: undefined
      })
    }
    const server = yield* NodeHttpServer.make(() => createServer(), {
      host: hp.host,
      port: hp.port,
      // A scrape takes milliseconds; don't let a stuck client hold shutdown for the default 20 s.
      gracefulShutdownTimeout: "2 seconds"
    }).pipe(
      Effect.mapError((error) =>
        new MetricsServerFailed({ address: bindAddress, reason: describeCause(error.cause), cause: error })
      )
    )
    yield* server.serve(app)
    return { address: HttpServer.formatAddress(server.address).replace(/^http:\/\//, "") }
  })
