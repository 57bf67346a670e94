import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Queue } from "effect"
import { join } from "node:path"
import { messagesDropped } from "../../src/metrics/metrics.ts"
import type { DropReason } from "../../src/domain/errors.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { spawnChildNode } from "../support/child-node.ts"
import { append, heartbeat, type Mode, nodeConfig, startNode, tempDir } from "../support/cluster.ts"
import { counter } from "../support/metrics.ts"

const REASONS: ReadonlyArray<DropReason> = [
  "queue_full",
  "expired",
  "link_failed",
  "forged_from",
  "misaddressed",
  "wrong_class",
  "peer_removed",
  "snapshot_failed",
  "too_large",
  "transport_disabled"
]

/** Every drop counted for messages of `cls` to `peer`, by reason. */
const drops = (peer: number, cls: string) =>
  Effect.map(
    Effect.forEach(REASONS, (reason) => Effect.map(counter(messagesDropped, { peer: String(peer), class: cls, reason }), (n) => [reason, n] as const)),
    (entries) => Object.fromEntries(entries) as Record<DropReason, number>
  )

const minus = (after: Record<DropReason, number>, before: Record<DropReason, number>) =>
  Object.fromEntries(REASONS.map((r) => [r, (after[r] ?? 0) - (before[r] ?? 0)])) as Record<DropReason, number>

const total = (counts: Record<DropReason, number>) => REASONS.reduce((n, r) => n + counts[r], 0)

/** Messages per read and pause after each read of the slow application. */
const PER_READ = 100
const PAUSE_MS = 300

const childTable = (mode: Mode, dir: string, self: RaftTransportService) => {
  const local = self.localAddress()
  return {
    mode,
    node_id: 2,
    bind_address: "127.0.0.1:0",
    iroh_config: { key_file: join(dir, "node2.key"), relay_mode: "disabled", worker_thread: true },
    peers: [{
      id: 1,
      ...(local.iroh !== undefined ? { iroh_endpoint_id: local.iroh.endpointId, iroh_addresses: local.iroh.addresses } : {}),
      ...(local.grpc !== undefined ? { grpc_address: local.grpc.address } : {})
    }]
  }
}

/**
 * Finding 1 of the fault runs: a receiver whose application reads slowly was SIGKILLed with a
 * backlog, and the sender lost thousands of messages without counting one (an answered probe
 * "confirmed" appends still queued behind it). With acknowledgements the sender's accounting
 * is exact: every message it accepted was taken by the receiver's application or is counted.
 */
const backlogKilled = (mode: Mode) =>
  Effect.gen(function*() {
    const dir = tempDir()
    const a = yield* startNode(yield* nodeConfig(mode, 1, dir))
    const child = yield* spawnChildNode(childTable(mode, dir, a), { script: "slow-reader-node", args: [String(PER_READ), String(PAUSE_MS)] })
    const b = child.address
    yield* a.addPeer({
      id: 2,
      irohEndpointId: b.iroh?.endpointId,
      irohAddresses: b.iroh?.addresses ?? [],
      grpcAddress: b.grpc?.address
    })
    const before = { append: yield* drops(2, "append"), heartbeat: yield* drops(2, "heartbeat") }

    const taken = { a: [] as Array<number>, h: [] as Array<number> }
    let reads = 0
    const readLog = yield* Effect.forkScoped(Effect.forever(Effect.map(Queue.take(child.lines), (line) => {
      const got = line["got"] as { a: Array<number>; h: Array<number> } | undefined
      if (got === undefined) return
      reads++
      taken.a.push(...got.a)
      taken.h.push(...got.h)
    })))

    // Far faster than the application reads: the backlog fills the outbound queue, the
    // streams' flow-control windows and the receiver's inbound mailbox.
    let appends = 0
    let heartbeats = 0
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 400; i++) {
        appends++
        yield* Effect.ignore(a.send(2, append(1, 2, appends, 64)))
      }
      heartbeats++
      yield* a.send(2, heartbeat(1, 2, heartbeats))
      yield* Effect.sleep("50 millis")
    }
    expect(reads).toBeGreaterThan(3)

    // Killed in the middle of a pause: what the application took was printed before it.
    const readsBefore = reads
    while (reads === readsBefore) yield* Effect.sleep("5 millis")
    yield* Effect.sleep(`${PAUSE_MS / 3} millis`)
    yield* child.stop("SIGKILL")
    yield* child.outputEnded
    yield* Effect.sleep("50 millis") // the last lines through the queue
    yield* Fiber.interrupt(readLog)

    // The sender notices (probes or the connection), then the peer is removed so that what is
    // still queued is counted too.
    const deadline = Date.now() + 30_000
    while ((yield* a.peerStatus(2)).links.every((l) => l.state === "connected") && Date.now() < deadline) {
      yield* Effect.sleep("50 millis")
    }
    expect((yield* a.peerStatus(2)).links.some((l) => l.state !== "connected")).toBe(true)
    yield* a.removePeer(2)

    const appendDrops = minus(yield* drops(2, "append"), before.append)
    const heartbeatDrops = minus(yield* drops(2, "heartbeat"), before.heartbeat)
    expect(new Set(taken.a).size).toBe(taken.a.length)
    expect(new Set(taken.h).size).toBe(taken.h.length)
    const summary = {
      appends: { sent: appends, delivered: taken.a.length, dropped: appendDrops },
      heartbeats: { sent: heartbeats, delivered: taken.h.length, dropped: heartbeatDrops }
    }
    yield* Effect.logInfo(JSON.stringify(summary))
    // The backlog was real and is counted as lost on the link, not silently gone.
    expect(appendDrops.link_failed).toBeGreaterThan(PER_READ)
    expect(taken.a.length + total(appendDrops)).toBe(appends)
    expect(taken.h.length + total(heartbeatDrops)).toBe(heartbeats)
  }).pipe(Effect.scoped)

describe("a receiver with a backlog is killed", () => {
  it.live("over iroh: sent = delivered + counted, exactly", () => backlogKilled("iroh"), { timeout: 120_000 })
  it.live("over gRPC: sent = delivered + counted, exactly", () => backlogKilled("grpc"), { timeout: 120_000 })
})
