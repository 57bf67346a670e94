/**
 * Demo: three raft-transport nodes on loopback over Iroh (relays off, direct addresses).
 * Each node sends appends and heartbeats to the others; then one node queues 5,000 appends
 * and a vote behind them, and the receiver shows where the vote landed. Ends with the
 * per-class counters. Run: `npm run demo` (or `npx tsx examples/cluster.ts`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Metric, References } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  classNames,
  decodeTransportConfig,
  makeRaftTransport,
  MessageType,
  type RaftMessage,
  type RaftTransportService
} from "../src/index.ts"

const NODES = 3
const dir = mkdtempSync(join(tmpdir(), "raft-transport-demo-"))

const append = (from: number, to: number, index: number): RaftMessage => ({
  msgType: MessageType.Append, from, to, term: 1, index, logTerm: 1,
  entries: [{ term: 1, index, data: new TextEncoder().encode(`set key${index} = value${index}`) }]
})

const startNode = (id: number) =>
  Effect.gen(function*() {
    const config = yield* decodeTransportConfig({
      mode: "iroh",
      node_id: id,
      bind_address: "127.0.0.1:0",
      iroh_config: { key_file: join(dir, `node${id}.key`), relay_mode: "disabled" }
    })
    return yield* makeRaftTransport(config)
  })

const receiveN = (node: RaftTransportService, n: number) =>
  Effect.gen(function*() {
    const out: Array<RaftMessage> = []
    while (out.length < n) out.push(...(yield* node.receiveBatch(n - out.length)))
    return out
  })

const main = Effect.gen(function*() {
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const nodes: Array<RaftTransportService> = []
  for (let id = 1; id <= NODES; id++) nodes.push(yield* startNode(id))
  for (const node of nodes) {
    for (const other of nodes) {
      if (other === node) continue
      const { endpointId, addresses } = other.localAddress().iroh!
      yield* node.addPeer({ id: other.nodeId, irohEndpointId: endpointId, irohAddresses: addresses })
    }
  }
  console.log("\nNodes (raft id -> Iroh endpoint id @ direct addresses):")
  for (const n of nodes) {
    const a = n.localAddress().iroh!
    console.log(`  node ${n.nodeId} -> ${a.endpointId.slice(0, 16)}… @ ${a.addresses.join(", ")}`)
  }

  const start = performance.now()
  for (const from of nodes) {
    for (const to of nodes) {
      if (from === to) continue
      for (let i = 1; i <= 100; i++) yield* from.send(to.nodeId, append(from.nodeId, to.nodeId, i))
      yield* from.send(to.nodeId, { msgType: MessageType.Heartbeat, from: from.nodeId, to: to.nodeId, term: 1, commit: 100 })
    }
  }
  for (const node of nodes) yield* receiveN(node, (NODES - 1) * 101)
  console.log(`\nAll-to-all: ${NODES * (NODES - 1) * 101} messages delivered in ${(performance.now() - start).toFixed(1)} ms`)

  const [leader, follower] = [nodes[0]!, nodes[1]!]
  for (let i = 1; i <= 5000; i++) yield* leader.send(2, append(1, 2, 1000 + i))
  yield* leader.send(2, { msgType: MessageType.RequestVote, from: 1, to: 2, term: 2, index: 6000, logTerm: 1 })
  const got = yield* receiveN(follower, 5001)
  const position = got.findIndex((m) => m.msgType === MessageType.RequestVote)
  console.log(
    `Priority: a vote queued behind 5,000 appends was received as message #${position + 1} of 5,001 ` +
      `(it overtook the ${5000 - position} appends still queued when it was sent)`
  )

  console.log("\nMessages sent per class (all nodes):")
  const snapshot = yield* Metric.snapshot
  for (const cls of classNames) {
    const total = snapshot
      .filter((m) => m.id === "raft_transport_messages_sent_total" && m.attributes?.["class"] === cls)
      .reduce((n, m) => n + Number((m.state as { count: number }).count), 0)
    console.log(`  ${cls.padEnd(10)} ${total}`)
  }
  console.log("\nStatus of node 1's peers:")
  for (const status of yield* nodes[0]!.peers) {
    console.log(`  peer ${status.peer}: ${status.links.map((l) => `${l.transport} ${l.state}, rtt ${l.rttMs ?? "?"} ms`).join("; ")}`)
  }
  console.log("\n(The Raft manager and the key-value cluster demo arrive with issue 4.)")
}).pipe(Effect.scoped)

NodeRuntime.runMain(main.pipe(Effect.provideService(References.MinimumLogLevel, "Warn")))
