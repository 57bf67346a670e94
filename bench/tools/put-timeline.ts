/**
 * Where one client's PUT spends its time: a 3-node cluster (real node processes, loopback) takes
 * PUTs from one client, and every node marks the moments each PUT passes through
 * (`put-timeline-hooks.ts`, loaded before the node's code; the client's `fetch` is marked here).
 * Prints the median and p90 of each leg of the path, in µs:
 *
 *   client → leader's request → propose → the follower steps the append → its log write →
 *   durable → the leader steps its answer → the reply → the client has the answer's headers
 *
 * "The follower" is the one whose answer the leader took first (the one that made the quorum).
 * Over Iroh the legs around the network are split further at the binding's calls.
 *
 *   npx tsx bench/tools/put-timeline.ts <iroh|grpc> [seconds=5]
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { MessageType } from "../../src/message/types.ts"
import { type ClusterTransport, LocalCluster } from "../../src/node/local-cluster.ts"
import { clusterWorkload } from "../phases/cluster.ts"

const transport = (["iroh", "grpc"] as const).find((t) => t === process.argv[2])
const seconds = Number(process.argv[3] ?? 5)
const hooks = fileURLToPath(new URL("./put-timeline-hooks.ts", import.meta.url))

interface Mark {
  readonly us: number
  readonly pid: number
  readonly label: string
}

const clientMarks: Array<Mark> = []
const markHere = (label: string) => clientMarks.push({ us: (performance.timeOrigin + performance.now()) * 1000, pid: process.pid, label })
const realFetch = globalThis.fetch
globalThis.fetch = async (...args: Parameters<typeof fetch>) => {
  markHere("client-send")
  const response = await realFetch(...args)
  markHere("client-headers")
  return response
}

const parse = (text: string): Array<Mark> =>
  text.split("\n").filter((line) => line.length > 0).map((line) => {
    const [us, pid, ...label] = line.split(" ")
    return { us: Number(us), pid: Number(pid), label: label.join(" ") }
  })

/**
 * The legs of each PUT, in µs, by name (in path order). `nodeOfPid`: each node process's Raft
 * id, which a step mark names as the message's sender.
 */
const legsOf = (marks: ReadonlyArray<Mark>, leaderPid: number, nodeOfPid: ReadonlyMap<number, number>): Map<string, Array<number>> => {
  const legs = new Map<string, Array<number>>()
  const add = (name: string, from: Mark | undefined, to: Mark | undefined) => {
    if (from === undefined || to === undefined) return
    const list = legs.get(name) ?? []
    list.push(to.us - from.us)
    legs.set(name, list)
  }
  const byPid = new Map<number, Array<Mark>>()
  for (const m of marks) {
    const list = byPid.get(m.pid)
    if (list === undefined) byPid.set(m.pid, [m])
    else list.push(m)
  }
  const after = (pid: number, at: number, test: (label: string) => boolean, before = Number.POSITIVE_INFINITY) =>
    byPid.get(pid)?.find((m) => m.us >= at && m.us <= before && test(m.label))
  const lastBefore = (pid: number, from: number, to: number, test: (label: string) => boolean) =>
    byPid.get(pid)?.filter((m) => m.us >= from && m.us <= to && test(m.label)).at(-1)
  const followers = [...nodeOfPid.keys()].filter((pid) => pid !== leaderPid)
  const stepOf = (type: number, from?: number) => (label: string) => {
    const [kind, t, f] = label.split(" ")
    return kind === "step" && Number(t) === type && (from === undefined || Number(f) === from)
  }
  const sizeAbove = (kind: string, bytes: number) => (label: string) => label.startsWith(kind) && Number(label.split(" ")[1]) > bytes
  for (const send of marks.filter((m) => m.label === "client-send")) {
    const request = after(leaderPid, send.us, (l) => l === "request")
    if (request === undefined) continue
    const propose = after(leaderPid, request.us, (l) => l === "propose")
    const reply = propose && after(leaderPid, propose.us, (l) => l === "reply")
    const headers = reply && after(process.pid, reply.us, (l) => l === "client-headers")
    if (propose === undefined || reply === undefined || headers === undefined) continue
    // The follower whose answer the leader stepped first, after its log write was durable.
    let quorum: { stepped: Mark; durable: Mark; write: Mark; answer: Mark; pid: number } | undefined
    for (const pid of followers) {
      const stepped = after(pid, propose.us, stepOf(MessageType.Append), reply.us)
      const write = stepped && after(pid, stepped.us, (l) => l === "log-write", reply.us)
      const durable = write && after(pid, write.us, (l) => l === "log-durable", reply.us)
      const answer = durable && after(leaderPid, durable.us, stepOf(MessageType.AppendResponse, nodeOfPid.get(pid)), reply.us)
      if (stepped === undefined || write === undefined || durable === undefined || answer === undefined) continue
      if (quorum === undefined || answer.us < quorum.answer.us) quorum = { stepped, durable, write, answer, pid }
    }
    if (quorum === undefined) continue
    add("client sends → leader's request event", send, request)
    add("request → propose", request, propose)
    add("propose → follower steps the append", propose, quorum.stepped)
    add("follower: step → log write submitted", quorum.stepped, quorum.write)
    add("follower: log write → durable", quorum.write, quorum.durable)
    add("follower durable → leader steps its answer", quorum.durable, quorum.answer)
    add("leader: answer stepped → reply written", quorum.answer, reply)
    add("reply written → client has the headers", reply, headers)
    add("total, as the client sees it", send, headers)
    // Iroh: the legs around the network, at the binding's calls.
    const appendWrite = after(leaderPid, propose.us, sizeAbove("net-write", 100), quorum.stepped.us)
    const appendRead = appendWrite && after(quorum.pid, appendWrite.us, sizeAbove("net-read", 100), quorum.stepped.us)
    const answerWrite = after(quorum.pid, quorum.durable.us, (l) => l.startsWith("net-write"), quorum.answer.us)
    const answerRead = answerWrite && lastBefore(leaderPid, answerWrite.us, quorum.answer.us, (l) => l.startsWith("net-read"))
    if (appendWrite !== undefined && appendRead !== undefined && answerWrite !== undefined && answerRead !== undefined) {
      add("iroh: propose → leader's append write call", propose, appendWrite)
      add("iroh: append write call → follower's read done", appendWrite, appendRead)
      add("iroh: follower's read done → step", appendRead, quorum.stepped)
      add("iroh: durable → follower's answer write call", quorum.durable, answerWrite)
      add("iroh: answer write call → leader's read done", answerWrite, answerRead)
      add("iroh: leader's read done → step", answerRead, quorum.answer)
    }
  }
  return legs
}

const quantile = (values: ReadonlyArray<number>, q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))]!

const program = Effect.gen(function*() {
  if (transport === undefined || !(seconds > 0)) {
    return yield* Effect.sync(() => {
      process.stderr.write("usage: put-timeline.ts <iroh|grpc> [seconds=5]\n")
      process.exitCode = 2
    })
  }
  const dir = mkdtempSync(join(tmpdir(), `raft-put-timeline-${transport}-`))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const file = join(dir, "marks.log")
  process.env["PUT_TIMELINE_FILE"] = file
  const cluster = yield* LocalCluster.make({
    dir,
    nodes: 3,
    transport: transport satisfies ClusterTransport,
    logLevel: "warn",
    // tsx first: the hooks are TypeScript (the node's own `--import tsx` follows, a no-op then).
    nodeFlags: ["--import", "tsx", "--import", hooks]
  })
  yield* cluster.startAll()
  const leader = (yield* cluster.waitForLeader()).id
  const leaderPid = cluster.process(leader)?.pid ?? -1
  const load = (clients: number, durationMs: number) =>
    clusterWorkload(cluster, () => leader, clients, durationMs)
  yield* load(8, 1000)
  const from = (performance.timeOrigin + performance.now()) * 1000
  const result = yield* load(1, seconds * 1000)
  const to = (performance.timeOrigin + performance.now()) * 1000
  yield* Effect.sleep(600) // the nodes' last marks reach the file
  const marks = [...parse(readFileSync(file, "utf8")), ...clientMarks].filter((m) => m.us >= from && m.us <= to).sort((a, b) => a.us - b.us)
  const nodeOfPid = new Map(cluster.ids.map((id) => [cluster.process(id)?.pid ?? -1, id]))
  const legs = legsOf(marks, leaderPid, nodeOfPid)
  const lines = [...legs].map(([name, values]) =>
    `${name.padEnd(48)} p50 ${quantile(values, 0.5).toFixed(0).padStart(6)}  p90 ${quantile(values, 0.9).toFixed(0).padStart(6)}`
  )
  const puts = legs.get("total, as the client sees it")?.length ?? 0
  yield* Effect.sync(() =>
    void process.stdout.write(
      `${transport}, 1 client, ${seconds} s: ${result.puts} PUTs, ${puts} traced end to end (µs)\n${lines.join("\n")}\n`
    )
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
