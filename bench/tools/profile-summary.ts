/**
 * Summarises a V8 `.cpuprofile` (from `BENCH_CPU_PROF`): self time by function, self time by
 * origin (project source, effect runtime, protobufjs, binding calls, GC, idle), and inclusive
 * time of selected hot-path functions.
 *
 *   npx tsx bench/tools/profile-summary.ts /tmp/prof/vote-voter-3.cpuprofile [top=25]
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

/** Functions whose inclusive time is worth seeing on the transport's hot paths. */
const INCLUSIVE = [
  "writeAll",
  "read",
  "readExact",
  "encodeFramesToArray",
  "arrayToBytes",
  "encodePayload",
  "decodeRead",
  "decodeBatch",
  "pushSpans",
  "snapshotChunks",
  "deliver",
  "offerAll",
  "receiveBatch",
  "runTasks"
]

const origin = (frame: CallFrame): string => {
  const { url, functionName } = frame
  if (url === "") {
    if (functionName.startsWith("(")) return functionName
    return "native / binding"
  }
  if (url.includes("/node_modules/effect/")) return "effect runtime"
  if (url.includes("/node_modules/protobufjs/") || url.includes("/node_modules/@protobufjs/")) return "protobufjs"
  if (url.includes("/node_modules/@number0/iroh/")) return "iroh JS glue"
  if (url.includes("/src/")) return `src/${url.split("/src/")[1]?.split("/")[0] ?? ""}`
  if (url.includes("/bench/")) return "bench"
  if (url.startsWith("node:")) return "node internals"
  return "other"
}

const label = (frame: CallFrame): string => {
  const file = frame.url === "" ? "" : frame.url.replace(/^.*\/(node_modules\/|src\/|bench\/)/, "$1")
  return `${frame.functionName === "" ? "(anonymous)" : frame.functionName}${file === "" ? "" : ` ${file}:${frame.lineNumber + 1}`}`
}

const add = <K>(totals: Map<K, number>, key: K, ms: number): void => {
  totals.set(key, (totals.get(key) ?? 0) + ms)
}

const summarizeProfile = (profile: Profile, top = 25): string => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const selfMs = new Map<number, number>()
  const inclusive = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    total += dt
    add(selfMs, id, dt)
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const name = byId.get(cur)?.callFrame.functionName ?? ""
      if (INCLUSIVE.includes(name) && !seen.has(name)) {
        seen.add(name)
        add(inclusive, name, dt)
      }
    }
  })
  const byLabel = new Map<string, number>()
  const byOrigin = new Map<string, number>()
  for (const [id, t] of selfMs) {
    const frame = byId.get(id)!.callFrame
    add(byLabel, label(frame), t)
    add(byOrigin, origin(frame), t)
  }
  // Busy stretches: runs of consecutive non-idle samples. The loop may turn within a stretch,
  // but it never waits for I/O: work is always queued, so anything new queues behind it.
  interface Stretch {
    readonly startMs: number
    ms: number
    readonly self: Map<string, number>
  }
  const stretches: Array<Stretch> = []
  let current: Stretch | undefined
  let clock = 0
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000
    clock += dt
    const frame = byId.get(id)!.callFrame
    if (frame.functionName === "(idle)") {
      current = undefined
      return
    }
    if (current === undefined) stretches.push(current = { startMs: clock, ms: 0, self: new Map() })
    current.ms += dt
    add(current.self, label(frame), dt)
  })
  const longest = [...stretches].sort((a, b) => b.ms - a.ms).slice(0, 8)
  const busyHistogram = [1, 2, 5, 10, 20].map((limit) => {
    const n = stretches.filter((x) => x.ms >= limit).length
    return `>= ${limit} ms: ${n}`
  })
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`
  const rows = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, t]) => `${t.toFixed(1).padStart(9)} ms ${pct(t)}  ${k}`)
  return [
    `profile: ${total.toFixed(0)} ms sampled`,
    "",
    "self time by origin:",
    ...rows(byOrigin, 20),
    "",
    `self time, top ${top} functions:`,
    ...rows(byLabel, top),
    "",
    "inclusive time of hot-path functions (by name):",
    ...rows(inclusive, INCLUSIVE.length),
    "",
    `continuously busy stretches (no idle sample): ${stretches.length}; ${busyHistogram.join(", ")}`,
    "longest stretches and their top self time:",
    ...longest.map((x) =>
      `${x.ms.toFixed(1).padStart(7)} ms at +${x.startMs.toFixed(0)} ms: ` +
      [...x.self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([k, t]) => `${k} ${t.toFixed(1)} ms`).join("; ")
    )
  ].join("\n")
}

const [file, top] = process.argv.slice(2)
if (file === undefined) {
  console.error("usage: tsx bench/tools/profile-summary.ts <file.cpuprofile> [top]")
  process.exit(2)
}
console.log(summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(top ?? 25)))
