import { Effect, type Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decodeTransportConfig } from "../../src/config/load.ts"
import type { TransportConfig } from "../../src/config/schema.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import type { PeerAddress } from "../../src/domain/peer-table.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { makeRaftTransport } from "../../src/transport/service.ts"

export const tempDir = (prefix = "raft-transport-test-"): string => mkdtempSync(join(tmpdir(), prefix))

export type Mode = "iroh" | "grpc" | "dual"

/** A loopback node config: relays off, direct addresses, a key file in `dir`, fast probes. */
export const nodeConfig = (mode: Mode, nodeId: number, dir: string, extra: Record<string, unknown> = {}) =>
  decodeTransportConfig({
    mode,
    node_id: nodeId,
    bind_address: "127.0.0.1:0",
    iroh_config: { key_file: join(dir, `node${nodeId}.key`), relay_mode: "disabled" },
    reconnect: { initial_backoff_ms: 20, max_backoff_ms: 500 },
    strategy: { probe_interval_ms: 200 },
    ...extra
  }).pipe(Effect.orDie)

export const irohNodeConfig = (nodeId: number, dir: string, extra: Record<string, unknown> = {}) =>
  nodeConfig("iroh", nodeId, dir, extra)

export const startNode = (config: TransportConfig): Effect.Effect<RaftTransportService, never, Scope.Scope> =>
  makeRaftTransport(config).pipe(Effect.orDie)

/** Starts `n` nodes (ids 1..n) and tells each about the others. */
export const startCluster = (
  n: number,
  extra: Record<string, unknown> = {},
  mode: Mode = "iroh"
): Effect.Effect<ReadonlyArray<RaftTransportService>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = tempDir()
    const nodes: Array<RaftTransportService> = []
    for (let id = 1; id <= n; id++) nodes.push(yield* startNode(yield* nodeConfig(mode, id, dir, extra)))
    yield* introduce(nodes)
    return nodes
  })

/** The peer-table entry other nodes need to reach `node`. */
export const addressOf = (node: RaftTransportService, overrides: Partial<PeerAddress> = {}): PeerAddress => {
  const local = node.localAddress()
  return {
    id: node.nodeId,
    irohEndpointId: local.iroh?.endpointId,
    irohAddresses: local.iroh?.addresses ?? [],
    grpcAddress: local.grpc?.address,
    ...overrides
  }
}

/** Adds every node to every other node's peer table, with its current addresses. */
export const introduce = (nodes: ReadonlyArray<RaftTransportService>) =>
  Effect.forEach(nodes, (node) =>
    Effect.forEach(nodes, (other) => other.nodeId === node.nodeId ? Effect.void : node.addPeer(addressOf(other))), {
      discard: true
    })

export const append = (from: number, to: number, index: number, size = 0): RaftMessage => ({
  msgType: MessageType.Append,
  from,
  to,
  term: 1,
  index,
  logTerm: 1,
  commit: 0,
  entries: [{ term: 1, index, data: new Uint8Array(size) }]
})

export const vote = (from: number, to: number, term = 2): RaftMessage => ({
  msgType: MessageType.RequestVote,
  from,
  to,
  term,
  index: 10,
  logTerm: 1
})

export const heartbeat = (from: number, to: number, commit = 0): RaftMessage => ({
  msgType: MessageType.Heartbeat,
  from,
  to,
  term: 1,
  commit
})

/** Receives exactly `n` messages. */
export const receiveN = (node: RaftTransportService, n: number) =>
  Effect.gen(function*() {
    const out: Array<RaftMessage> = []
    while (out.length < n) out.push(...(yield* node.receiveBatch(n - out.length)))
    return out
  })

