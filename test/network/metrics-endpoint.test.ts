import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { batchSize, messagesDropped, messagesSent, queueDepth } from "../../src/metrics/metrics.ts"
import { renderPrometheus } from "../../src/metrics/prometheus.ts"
import { serveMetrics } from "../../src/metrics/server.ts"
import { append, receiveN, startCluster } from "../support/network-cluster.ts"

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

interface Exposition {
  readonly samples: ReadonlyArray<Sample>
  readonly help: ReadonlyMap<string, string>
  readonly type: ReadonlyMap<string, string>
  /** Metric names in the order their `# TYPE` lines appear, with duplicates kept. */
  readonly typeOrder: ReadonlyArray<string>
}

const unescapeLabel = (s: string): string =>
  s.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))

/** A small parser for text format 0.0.4: comments, and `name{k="v",...} value` lines. */
const parseExposition = (text: string): Exposition => {
  const samples: Array<Sample> = []
  const help = new Map<string, string>()
  const type = new Map<string, string>()
  const typeOrder: Array<string> = []
  for (const line of text.split("\n")) {
    if (line === "") continue
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta !== null) {
      const [, kind, name, rest] = meta
      if (kind === "HELP") {
        expect(help.has(name!), `HELP ${name} twice`).toBe(false)
        help.set(name!, rest!)
      } else {
        expect(type.has(name!), `TYPE ${name} twice`).toBe(false)
        type.set(name!, rest!)
        typeOrder.push(name!)
      }
      continue
    }
    expect(line.startsWith("#"), `unexpected comment: ${line}`).toBe(false)
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    expect(sample, `malformed line: ${line}`).not.toBeNull()
    const [, name, body, raw] = sample!
    const labels: Record<string, string> = {}
    if (body !== undefined && body !== "") {
      const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy
      let consumed = 0
      for (let m = pair.exec(body); m !== null; m = pair.exec(body)) {
        labels[m[1]!] = unescapeLabel(m[2]!)
        consumed = pair.lastIndex
      }
      expect(consumed, `malformed labels: ${body}`).toBe(body.length)
    }
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw)
    expect(Number.isNaN(value) && raw !== "NaN", `bad value: ${line}`).toBe(false)
    samples.push({ name: name!, labels, value })
  }
  return { samples, help, type, typeOrder }
}

const sameLabels = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => {
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k])
}

const find = (exposition: Exposition, name: string, labels: Record<string, string>): Array<Sample> =>
  exposition.samples.filter((s) => s.name === name && sameLabels(s.labels, labels))

const valueOf = (exposition: Exposition, name: string, labels: Record<string, string>): number => {
  const found = find(exposition, name, labels)
  expect(found, `${name}${JSON.stringify(labels)}`).toHaveLength(1)
  return found[0]!.value
}

const get = (url: string, init?: RequestInit) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, { ...init, signal })
      return { status: response.status, contentType: response.headers.get("content-type"), body: await response.text() }
    },
    catch: (cause) => new Error(`fetch ${url}: ${String(cause)}`)
  })

// A label value no other test uses, so the assertions below see only this file's updates.
const peer = `metrics-test-${process.pid}`

describe("Prometheus /metrics endpoint", () => {
  it.live("serves counters, gauges and cumulative histograms in text format 0.0.4", () =>
    Effect.gen(function*() {
      const server = yield* serveMetrics("127.0.0.1:0")
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(server.address).not.toBe("127.0.0.1:0")
      const base = `http://${server.address}`

      const sentLabels = { peer, class: "append", transport: "iroh" }
      yield* Metric.update(Metric.withAttributes(messagesSent, sentLabels), 3)
      yield* Metric.update(Metric.withAttributes(messagesSent, { ...sentLabels, class: "election" }), 1)
      yield* Metric.update(Metric.withAttributes(messagesSent, sentLabels), 2)
      const tricky = 'a "quoted" \\ value\nwith a newline'
      yield* Metric.update(Metric.withAttributes(messagesDropped, { peer, class: "append", reason: tricky }), 1)
      yield* Metric.update(Metric.withAttributes(queueDepth, { peer, class: "append" }), 42)
      const batch = Metric.withAttributes(batchSize, { peer, class: "append" })
      for (const n of [1, 3, 3, 7, 150, 5000]) yield* Metric.update(batch, n)

      const res = yield* get(`${base}/metrics`)
      expect(res.status).toBe(200)
      expect(res.contentType).toBe("text/plain; version=0.0.4; charset=utf-8")
      expect(res.body.endsWith("\n")).toBe(true)
      const exp = parseExposition(res.body)

      // HELP / TYPE: once per name (the parser fails on repeats), one family per name.
      expect(new Set(exp.typeOrder).size).toBe(exp.typeOrder.length)
      expect(exp.type.get("raft_transport_messages_sent_total")).toBe("counter")
      expect(exp.help.get("raft_transport_messages_sent_total")).toBe(
        "Messages written to a link, by peer, class and transport"
      )
      expect(exp.type.get("raft_transport_queue_depth")).toBe("gauge")
      expect(exp.type.get("raft_transport_batch_messages")).toBe("histogram")
      expect(exp.help.get("raft_transport_batch_messages")).toBe("Messages per link write, by class")

      // Every sample belongs to the family declared by the closest TYPE line above it.
      let family: string | undefined
      for (const line of res.body.split("\n")) {
        const t = /^# TYPE (\S+) /.exec(line)
        if (t !== null) family = t[1]
        else if (line !== "" && !line.startsWith("#")) {
          const name = line.split(/[{ ]/, 1)[0]!
          const allowed = exp.type.get(family!) === "histogram"
            ? [`${family}_bucket`, `${family}_sum`, `${family}_count`]
            : exp.type.get(family!) === "summary"
            ? [family, `${family}_sum`, `${family}_count`]
            : [family]
          expect(allowed, line).toContain(name)
        }
      }

      // Counters and gauges, by label set.
      expect(valueOf(exp, "raft_transport_messages_sent_total", sentLabels)).toBe(5)
      expect(valueOf(exp, "raft_transport_messages_sent_total", { ...sentLabels, class: "election" })).toBe(1)
      expect(valueOf(exp, "raft_transport_queue_depth", { peer, class: "append" })).toBe(42)
      // Escaped label values round-trip.
      expect(valueOf(exp, "raft_transport_messages_dropped_total", { peer, class: "append", reason: tricky })).toBe(1)
      expect(res.body).toContain('reason="a \\"quoted\\" \\\\ value\\nwith a newline"')

      // Histogram: cumulative buckets over the declared boundaries, then +Inf = _count.
      const labels = { peer, class: "append" }
      const buckets = exp.samples.filter((s) =>
        s.name === "raft_transport_batch_messages_bucket" && s.labels["peer"] === peer
      )
      const les = buckets.map((b) => b.labels["le"])
      expect(les).toEqual(["1", "2", "5", "10", "20", "50", "100", "200", "500", "1000", "+Inf"])
      for (const b of buckets) expect(sameLabels({ ...b.labels, le: "" }, { ...labels, le: "" })).toBe(true)
      const counts = buckets.map((b) => b.value)
      expect(counts).toEqual([1, 1, 3, 4, 4, 4, 4, 5, 5, 5, 6])
      for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!)
      const count = valueOf(exp, "raft_transport_batch_messages_count", labels)
      expect(count).toBe(6)
      expect(counts.at(-1)).toBe(count)
      expect(valueOf(exp, "raft_transport_batch_messages_sum", labels)).toBe(1 + 3 + 3 + 7 + 150 + 5000)

      // The endpoint serves what renderPrometheus renders.
      const direct = parseExposition(yield* renderPrometheus)
      expect(valueOf(direct, "raft_transport_messages_sent_total", sentLabels)).toBe(5)

      // A scrape sees later updates.
      yield* Metric.update(Metric.withAttributes(messagesSent, sentLabels), 10)
      const again = parseExposition((yield* get(`${base}/metrics`)).body)
      expect(valueOf(again, "raft_transport_messages_sent_total", sentLabels)).toBe(15)
    }).pipe(Effect.scoped))

  it.live("answers /health, 404 for unknown paths, 405 for other methods", () =>
    Effect.gen(function*() {
      const { address } = yield* serveMetrics("127.0.0.1:0")
      const health = yield* get(`http://${address}/health`)
      expect(health.status).toBe(200)
      expect(health.body).toBe("ok")
      expect((yield* get(`http://${address}/metrics?x=1`)).status).toBe(200)
      expect((yield* get(`http://${address}/nope`)).status).toBe(404)
      expect((yield* get(`http://${address}/`)).status).toBe(404)
      expect((yield* get(`http://${address}/metrics/extra`)).status).toBe(404)
      expect((yield* get(`http://${address}/metrics`, { method: "POST", body: "x" })).status).toBe(405)
    }).pipe(Effect.scoped))

  it.live("stops listening when its scope closes", () =>
    Effect.gen(function*() {
      const { address } = yield* Effect.scoped(
        Effect.tap(serveMetrics("127.0.0.1:0"), ({ address }) =>
          Effect.flatMap(get(`http://${address}/health`), (r) => Effect.sync(() => expect(r.status).toBe(200)))
        )
      )
      const after = yield* Effect.flip(get(`http://${address}/health`))
      expect(after.message).toContain("fetch")
    }))

  it.live("fails with MetricsServerFailed for a bad or taken address", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(serveMetrics("not an address"))
      expect(bad._tag).toBe("MetricsServerFailed")
      const { address } = yield* serveMetrics("127.0.0.1:0")
      const taken = yield* Effect.flip(serveMetrics(address))
      expect(taken._tag).toBe("MetricsServerFailed")
      expect(taken.message).toContain("EADDRINUSE")
    }).pipe(Effect.scoped))
})

describe("the transport's /metrics", () => {
  it.live("is served at metrics_address and shows what the transport counted", () =>
    Effect.gen(function*() {
      const [a, b] = yield* startCluster(2, { metrics_address: "127.0.0.1:0" })
      for (let i = 1; i <= 5; i++) yield* a!.send(2, append(1, 2, i))
      yield* receiveN(b!, 5).pipe(Effect.timeout("20 seconds"))
      const address = a!.localAddress().metrics!.address
      const text = yield* Effect.promise((_signal) => fetch(`http://${address}/metrics`).then((r) => r.text()))
      const line = text.split("\n").find((l) =>
        l.startsWith("raft_transport_messages_sent_total{") && l.includes('peer="2"') && l.includes('class="append"')
      )
      expect(line).toBeDefined()
      expect(Number(line!.split(" ").at(-1))).toBeGreaterThanOrEqual(5)
      expect(text).toContain("# TYPE raft_transport_messages_sent_total counter")
    }).pipe(Effect.scoped))
})
