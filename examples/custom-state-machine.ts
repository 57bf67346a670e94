/**
 * A custom `StateMachine` on the reference Raft node: a replicated counter on three nodes,
 * over the in-memory network of `raft-transport/testing` (swap in `makeRaftTransport` or
 * `layerTomlFile` for real nodes; nothing else changes). A write proposed on any node is
 * forwarded to the leader, committed by a majority and applied on every node.
 *
 *   npx tsx examples/custom-state-machine.ts
 */
import { Effect, Schedule } from "effect"
import { decodeRaftConfig, type Entry, makeMemoryStorage, makeRaftNode, type StateMachine } from "raft-transport/raft"
import { MemoryNetwork } from "raft-transport/testing"

/** Adds each entry's signed 32-bit amount; a proposal returns the new total. */
class Counter implements StateMachine<number> {
  total = 0

  apply(entry: Entry): number {
    const data = entry.data ?? new Uint8Array(4)
    this.total += new DataView(data.buffer, data.byteOffset, data.byteLength).getInt32(0)
    return this.total
  }

  snapshot(): Uint8Array {
    const bytes = new Uint8Array(8)
    new DataView(bytes.buffer).setFloat64(0, this.total)
    return bytes
  }

  restore(data: Uint8Array): void {
    this.total = data.length === 0 ? 0 : new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(0)
  }

  /** A snapshot from a peer is checked before it is stored: 8 bytes holding a finite number. */
  validate(data: Uint8Array): string | undefined {
    if (data.length !== 0 && data.length !== 8) return `expected 8 bytes, got ${data.length}`
    const total = data.length === 0 ? 0 : new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(0)
    return Number.isFinite(total) ? undefined : `not a finite total: ${total}`
  }
}

const add = (amount: number): Uint8Array => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setInt32(0, amount)
  return bytes
}

const program = Effect.gen(function*() {
  const ids = [1, 2, 3]
  const config = yield* decodeRaftConfig({ voters: ids })
  const network = yield* MemoryNetwork.make
  const counters = ids.map(() => new Counter())
  const nodes = yield* Effect.forEach(ids, (id, i) =>
    Effect.gen(function*() {
      const transport = yield* network.transport({ nodeId: id, peers: ids })
      return yield* makeRaftNode({ config, transport, storage: makeMemoryStorage(), stateMachine: counters[i]! })
    }))

  // Proposals wait for a leader to be elected (up to `proposal_timeout_ms`) and are retried
  // here while none is known yet.
  const propose = (i: number, amount: number) =>
    nodes[i]!.propose(add(amount)).pipe(
      Effect.retry({ while: (e) => e._tag === "NotLeader", schedule: Schedule.spaced("50 millis"), times: 100 })
    )
  yield* propose(0, 5)
  yield* propose(1, 10)
  const total = yield* propose(2, -3)
  // A linearizable read on any node sees every write acknowledged before it.
  const read = yield* nodes[0]!.read(() => counters[0]!.total)
  yield* Effect.log(`total after three writes: ${total}, read on node 1: ${read}`)
  return read
})

Effect.runPromise(Effect.scoped(program)).then(
  (total) => console.log(`done: counter = ${total}`),
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  }
)
