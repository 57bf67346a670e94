/**
 * Request and answer through two Iroh transports in one process, with delivery acknowledgements
 * riding on the answers (wire version 3) and on their own streams (version 2), in alternating
 * runs: the process's CPU per round trip for each, and the ratio run pair by pair, so that the
 * machine's drift between runs cancels.
 *
 *   npx tsx bench/tools/round-trips.ts [lanes=1] [round_trips=10000] [pairs=5]
 *
 * `lanes` requests are in flight at once: the requester answers each answer with the next
 * request, as a Raft leader sends a follower the next append when the last one is answered.
 * The responder answers each request at once. Both see only `RaftTransportService`.
 */
import { Effect, Fiber, References } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decodeTransportConfig } from "../../src/config/load.ts"
import type { RaftTransportService } from "../../src/domain/raft-transport.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"
import { makeRaftTransport } from "../../src/transport/service.ts"
import { median } from "../harness/stats.ts"

const lanes = Number(process.argv[2] ?? 1)
const roundTrips = Number(process.argv[3] ?? 10_000)
const pairs = Number(process.argv[4] ?? 5)

const request = (index: number): RaftMessage => ({
  msgType: MessageType.Append,
  from: 1,
  to: 2,
  term: 1,
  index,
  logTerm: 1,
  commit: 0,
  entries: [{ term: 1, index, data: new Uint8Array(100) }]
})
const answer = (index: number): RaftMessage => ({ msgType: MessageType.AppendResponse, from: 2, to: 1, term: 1, index })

const node = (id: number, dir: string, versions: ReadonlyArray<2 | 3>) =>
  Effect.gen(function*() {
    const config = yield* decodeTransportConfig({
      mode: "iroh",
      node_id: id,
      bind_address: "127.0.0.1:0",
      iroh_config: { key_file: join(dir, `node${id}.key`), relay_mode: "disabled" }
    })
    return yield* makeRaftTransport(config, { irohWireVersions: versions })
  })

const addressOf = (t: RaftTransportService) => ({
  id: t.nodeId,
  irohEndpointId: t.localAddress().iroh?.endpointId,
  irohAddresses: t.localAddress().iroh?.addresses ?? []
})

/** One run: CPU µs and wall ms per round trip. */
const run = (versions: ReadonlyArray<2 | 3>) =>
  Effect.gen(function*() {
    const dir = mkdtempSync(join(tmpdir(), "round-trips-"))
    const a = yield* node(1, dir, versions)
    const b = yield* node(2, dir, versions)
    yield* a.addPeer(addressOf(b))
    yield* b.addPeer(addressOf(a))
    let done = 0
    const responder = yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      for (const m of yield* b.receiveBatch(256)) yield* b.send(1, answer(m.index ?? 0))
    })))
    const requester = yield* Effect.forkScoped(Effect.gen(function*() {
      for (let lane = 0; lane < lanes; lane++) yield* a.send(2, request(lane))
      yield* Effect.forever(Effect.gen(function*() {
        for (const m of yield* a.receiveBatch(256)) {
          done++
          yield* a.send(2, request(m.index ?? 0))
        }
      }))
    }))
    // Connected and warm before the measured round trips.
    while (done < Math.min(1000, roundTrips)) yield* Effect.sleep(10)
    const start = done
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    while (done < start + roundTrips) yield* Effect.sleep(5)
    const cpu = process.cpuUsage(cpu0)
    const n = done - start
    const result = { cpuUs: (cpu.user + cpu.system) / n, wallMs: (performance.now() - t0) / n }
    yield* Fiber.interrupt(requester)
    yield* Fiber.interrupt(responder)
    return result
  }).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  const rides: Array<{ cpuUs: number; wallMs: number }> = []
  const streams: Array<{ cpuUs: number; wallMs: number }> = []
  for (let pair = 0; pair < pairs; pair++) {
    // Alternate which goes first, so neither always runs on a warmer process.
    if (pair % 2 === 0) {
      rides.push(yield* run([3, 2]))
      streams.push(yield* run([2]))
    } else {
      streams.push(yield* run([2]))
      rides.push(yield* run([3, 2]))
    }
    process.stderr.write(
      `pair ${pair + 1}: riding ${rides[pair]!.cpuUs.toFixed(1)} µs CPU, on streams ${streams[pair]!.cpuUs.toFixed(1)} µs CPU a round trip\n`
    )
  }
  const cpuRatios = rides.map((r, i) => r.cpuUs / streams[i]!.cpuUs)
  const wallRatios = rides.map((r, i) => r.wallMs / streams[i]!.wallMs)
  const fmt = (xs: ReadonlyArray<number>) => xs.map((x) => x.toFixed(2)).join(", ")
  console.log(`${lanes} lane(s), ${roundTrips} round trips a run, ${pairs} pairs (medians):`)
  console.log(`  acknowledgements riding (version 3): ${median(rides.map((r) => r.cpuUs)).toFixed(1)} µs CPU, ${(1000 * median(rides.map((r) => r.wallMs))).toFixed(1)} µs wall a round trip`)
  console.log(`  acknowledgements on streams (version 2): ${median(streams.map((r) => r.cpuUs)).toFixed(1)} µs CPU, ${(1000 * median(streams.map((r) => r.wallMs))).toFixed(1)} µs wall a round trip`)
  console.log(`  riding / on streams: CPU ${median(cpuRatios).toFixed(2)}x (${fmt(cpuRatios)}), wall ${median(wallRatios).toFixed(2)}x (${fmt(wallRatios)})`)
})

// The transports' own logs (connections, the losses counted as each run's nodes close) are not the figures.
Effect.runPromise(Effect.provideService(program, References.MinimumLogLevel, "Error") as Effect.Effect<void, unknown>).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
