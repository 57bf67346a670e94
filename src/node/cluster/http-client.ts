/** A small client for the node HTTP API: connection errors and timeouts are `NodeUnreachable`. */
import { NodeUnreachable } from "./errors.ts"
import { Effect } from "effect"
import { describeCause } from "../../domain/errors.ts"
import type { StatusBody } from "../http-api.ts"

export interface HttpReply {
  readonly status: number
  /** Parsed JSON when the reply is JSON, else the text. */
  readonly body: unknown
}

/** One HTTP request to a node's API; connection errors and timeouts are `NodeUnreachable`. */
export const request = (
  node: { readonly id: number; readonly http: string },
  method: "GET" | "PUT" | "DELETE" | "POST",
  path: string,
  options: { readonly body?: string; readonly timeoutMs?: number } = {}
): Effect.Effect<HttpReply, NodeUnreachable> =>
  Effect.tryPromise({
    try: async (signal) => {
      const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000)
      const response = await fetch(`http://${node.http}${path}`, {
        method,
        ...(options.body !== undefined ? { body: options.body } : {}),
        signal: AbortSignal.any([signal, timeout])
      })
      const text = await response.text()
      const isJson = (response.headers.get("content-type") ?? "").includes("json")
      return { status: response.status, body: isJson && text.length > 0 ? (JSON.parse(text) as unknown) : text }
    },
    catch: (cause) => new NodeUnreachable({ node: node.id, reason: describeFetchError(cause) })
  })

/** `ECONNREFUSED`, `timeout`, ...: short, as the workload counts failures by this reason. */
const describeFetchError = (cause: unknown): string => {
  if (!(cause instanceof Error)) return describeCause(cause)
  const inner = cause.cause
  if (inner instanceof Error) return "code" in inner && typeof inner.code === "string" ? inner.code : inner.message
  return cause.name === "TimeoutError" ? "timeout" : cause.message
}

/** What `GET /status` answers. */
export type NodeStatus = StatusBody

/** `GET path`; any status but 200 counts as the node not answering. */
export const getOk = (node: { readonly id: number; readonly http: string }, path: string, timeoutMs: number) =>
  Effect.flatMap(request(node, "GET", path, { timeoutMs }), (reply) =>
    reply.status === 200
      ? Effect.succeed(reply.body)
      : Effect.fail(new NodeUnreachable({ node: node.id, reason: `${path} answered ${reply.status}` })))

export const getStatus = (node: { readonly id: number; readonly http: string }, timeoutMs: number) =>
  Effect.map(getOk(node, "/status", timeoutMs), (body) => body as NodeStatus)

/** `name{labels} value` samples of a Prometheus text exposition. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const parsePrometheus = (text: string): Array<Sample> => {
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    const body = m[2] ?? ""
    for (const l of body.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

export const getMetrics = (node: { readonly id: number; readonly http: string }) =>
  Effect.map(getOk(node, "/metrics", 5000), (body) => parsePrometheus(String(body)))
