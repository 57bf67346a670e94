// Part (a) of the consumer check: plain Node, no loader, every subpath of the installed
// package, and something real from each. Run from the temporary consumer project.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { Effect, Schedule } from "effect"
import * as root from "raft-transport"
import * as raft from "raft-transport/raft"
import * as node from "raft-transport/node"
import * as testing from "raft-transport/testing"

// raft-transport: a codec round trip.
const message = {
  msgType: root.MessageType.Append,
  from: 1,
  to: 2,
  term: 3,
  index: 4,
  logTerm: 3,
  entries: [{ term: 3, index: 5, data: new Uint8Array([1, 2, 3]) }]
}
const decoded = root.decodeMessage(root.encodeMessage(message))
assert.equal(decoded.index, 4)
assert.deepEqual([...decoded.entries[0].data], [1, 2, 3])
assert.equal(root.classify(decoded), root.PriorityClass.Append)

// raft-transport: a config decode, with defaults, and a bad ticket named at decode time.
const config = await Effect.runPromise(root.parseConfigToml(`[transport]\nnode_id = 1\nmode = "grpc"\n`))
assert.equal(config.node_id, 1)
assert.equal(config.queues.append.capacity, 8192)
const bad = await Effect.runPromise(Effect.flip(root.parseConfigToml(
  `[transport]\nnode_id = 1\n[[transport.peers]]\nid = 2\niroh_ticket = "not-a-ticket"\n`
)))
assert.equal(bad._tag, "ConfigError")
assert.equal(bad.path, "transport.peers[0].iroh_ticket")

// raft-transport/testing: two in-memory peers exchange a message.
const received = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const network = yield* testing.MemoryNetwork.make
  const one = yield* network.transport({ nodeId: 1, peers: [2] })
  const two = yield* network.transport({ nodeId: 2, peers: [1] })
  yield* one.send(2, message)
  return yield* two.receive
})))
assert.equal(received.from, 1)
assert.deepEqual([...received.entries[0].data], [1, 2, 3])

// raft-transport/raft: a one-voter key-value node on the in-memory network commits a write.
const value = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const network = yield* testing.MemoryNetwork.make
  const transport = yield* network.transport({ nodeId: 1 })
  const raftConfig = yield* raft.decodeRaftConfig({ voters: [1] })
  const manager = yield* raft.makeRaftManager(raftConfig, new raft.KvStateMachine(), raft.makeMemoryStorage()).pipe(
    Effect.provideService(raft.RaftTransport, transport)
  )
  yield* manager.put("k", "v").pipe(Effect.retry({ while: (e) => e._tag === "NotLeader", schedule: Schedule.spaced("20 millis"), times: 250 }))
  return yield* manager.read("k")
})))
assert.equal(value, "v")
assert.equal(raft.RaftTransport, root.RaftTransport)

// raft-transport/node: a node config decode.
const nodeConfig = await Effect.runPromise(node.parseNodeConfigToml(
  `[transport]\nnode_id = 1\n[raft]\nvoters = [1]\n[http]\nbind_address = "127.0.0.1:0"\n`
))
assert.equal(nodeConfig.raft.voters[0], 1)
assert.equal(typeof node.startNode, "function")

// The bin: --version and --help through the installed command.
const manifest = JSON.parse(readFileSync("node_modules/raft-transport/package.json", "utf8"))
const bin = "node_modules/.bin/raft-node"
assert.equal(execFileSync(bin, ["--version"], { encoding: "utf8" }).trim(), `raft-node ${manifest.version}`)
assert.match(execFileSync(bin, ["--help"], { encoding: "utf8" }), /raft-node run --config <file>/)

console.log("consumer check (a): every subpath imports and works from plain Node")
