/**
 * Two nodes over Iroh in one process: each learns the other's ticket, node 1 sends an
 * append and a heartbeat, node 2 receives both, and both nodes shut down.
 *
 *   npx tsx examples/two-nodes.ts
 *
 * In a deployment each node is its own process with a TOML file naming its peers
 * (`layerTomlFile`); the tickets come from `raft-node keygen` or `localAddress()`.
 */
import { Effect } from "effect"
import { makeConfig, makeRaftTransport, MessageType, messageTypeName } from "raft-transport"

const program = Effect.gen(function*() {
  // Loopback only, no relay, ephemeral identities: nothing leaves the machine.
  const iroh = { bind_address: "127.0.0.1:0", relay_mode: "disabled" } as const
  const one = yield* makeRaftTransport(yield* makeConfig({ node_id: 1, mode: "iroh", iroh_config: iroh }))
  const two = yield* makeRaftTransport(yield* makeConfig({ node_id: 2, mode: "iroh", iroh_config: iroh }))

  // A node accepts connections only from peers in its table, identified by their endpoint id.
  yield* one.addPeer({ id: 2, irohTicket: two.localAddress().iroh?.ticket, irohAddresses: [] })
  yield* two.addPeer({ id: 1, irohTicket: one.localAddress().iroh?.ticket, irohAddresses: [] })

  yield* one.send(2, {
    msgType: MessageType.Append,
    from: 1,
    to: 2,
    term: 1,
    index: 0,
    logTerm: 0,
    entries: [{ term: 1, index: 1, data: new TextEncoder().encode("hello") }]
  })
  yield* one.send(2, { msgType: MessageType.Heartbeat, from: 1, to: 2, term: 1, commit: 0 })

  const received = [yield* two.receive, yield* two.receive]
  for (const m of received) {
    const data = m.entries?.[0]?.data
    yield* Effect.log(`node 2 got ${messageTypeName(m.msgType)} from ${m.from}${data ? `: ${new TextDecoder().decode(data)}` : ""}`)
  }
  return received.length
})

// The scope owns both endpoints: they close when the program ends.
Effect.runPromise(Effect.scoped(program)).then(
  (n) => console.log(`done: ${n} messages`),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
