/**
 * The README's "Using it", runnable as written: node 1's transport comes from a TOML config
 * as a layer, the program sends a heartbeat to node 2 and waits for its answer. Node 2, the
 * other end, runs in the same process over gRPC on loopback.
 *
 *   npx tsx examples/using-it.ts
 */
import { Context, Effect, Layer } from "effect"
import { layerConfig, makeConfig, makeRaftTransport, MessageType, messageTypeName, parseConfigToml, RaftTransport } from "raft-transport"

// The other node: answers every heartbeat it receives.
const peer = Effect.gen(function*() {
  const two = yield* makeRaftTransport(yield* makeConfig({ node_id: 2, mode: "grpc", bind_address: "127.0.0.1:0" }))
  yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const m = yield* two.receive
    if (m.msgType === MessageType.Heartbeat) {
      yield* two.send(m.from, { msgType: MessageType.HeartbeatResponse, from: 2, to: m.from, term: m.term ?? 0 })
    }
  })))
  return two
})

// What a node's own code looks like: it asks for `RaftTransport` and never sees sockets.
const program = Effect.gen(function*() {
  const transport = yield* RaftTransport
  // Never waits: enqueues on the peer's heartbeat queue. Fails with MessageDropped when the
  // queue is full and PeerUnknown for a node outside the peer table.
  yield* transport.send(2, { msgType: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 10 })
  // Highest class first: a vote would be received before any queued append.
  return yield* transport.receive
})

const main = Effect.gen(function*() {
  const two = yield* peer
  const tomlText = `
    [transport]
    node_id = 1
    mode = "grpc"
    bind_address = "127.0.0.1:0"

    [[transport.peers]]
    id = 2
    grpc_address = "${two.localAddress().grpc?.address}"
  `
  const layer = Layer.unwrap(Effect.map(parseConfigToml(tomlText), layerConfig))
  // or: layerTomlFile("node1.toml")

  // Built here rather than with `Effect.provide(layer)` only so that node 2 can learn node 1's
  // port before the program runs: a node accepts only peers in its table.
  const services = yield* Layer.build(layer)
  const one = Context.get(services, RaftTransport)
  yield* two.addPeer({ id: 1, grpcAddress: one.localAddress().grpc?.address, irohAddresses: [] })
  return yield* program.pipe(Effect.provide(services))
})

Effect.runPromise(Effect.scoped(main)).then(
  (reply) => console.log(`node 1 got ${messageTypeName(reply.msgType)} from node ${reply.from}`),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
