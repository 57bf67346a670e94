/**
 * The vote-latency phase alone, with a chosen snapshot chunk size and snapshot pace (the
 * transport's own: `iroh_snapshot_bytes_per_sec` or `grpc_snapshot_bytes_per_sec`; 0 is
 * unpaced), for trying settings that `npm run bench` does not sweep:
 *
 *   npx tsx bench/tools/vote-pacing.ts [iroh|grpc|dual] <snapshot_chunk_bytes> <snapshot_bytes_per_sec> [runs=2]
 *
 * Each run is a fresh pair of processes; one line per run: idle and load round trips, the
 * ratio of the p99s, the snapshot stream's rate and both sides' event-loop lag p99.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseMode } from "../harness/loopback-node.ts"
import { DEFAULT_VOTES, runVoteLatency } from "../phases/vote-latency.ts"

const [modeArg, chunkArg = "4096", rateArg = "0", runsArg = "2"] = process.argv.slice(2)
const mode = parseMode(modeArg)
const chunk = Number(chunkArg)
const rate = Number(rateArg)
const runs = Number(runsArg)
const f = (ms: number) => ms.toFixed(2)

const oneRun = Effect.acquireUseRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "vote-pacing-"))),
  (keyDir) =>
    Effect.flatMap(
      runVoteLatency({
        keyDir,
        mode,
        snapshotChunkBytes: chunk,
        // The same pace whether or not an election is under way (the votes make it one).
        batching: mode === "grpc"
          ? { grpc_snapshot_bytes_per_sec: rate, grpc_snapshot_election_bytes_per_sec: rate }
          : { iroh_snapshot_bytes_per_sec: rate, iroh_snapshot_election_bytes_per_sec: rate },
        ...DEFAULT_VOTES
      }),
      (r) =>
        Console.log(
          `${mode} chunk ${chunk} B, pace ${rate} B/s: idle p50 ${f(r.idle.rtt.p50)} p99 ${f(r.idle.rtt.p99)} ms | ` +
            `load p50 ${f(r.load.rtt.p50)} p99 ${f(r.load.rtt.p99)} max ${f(r.load.rtt.max)} ms | ` +
            `p99 ratio ${(r.load.rtt.p99 / r.idle.rtt.p99).toFixed(1)} | snapshot ${r.load.snapshotMbPerSec.toFixed(1)} MB/s | ` +
            `lag p99 candidate ${f(r.load.candidate.lag.p99)} / voter ${f(r.load.voter.lag.p99)} ms`
        )
    ),
  (keyDir) => Effect.sync(() => rmSync(keyDir, { recursive: true, force: true }))
)

NodeRuntime.runMain(Effect.repeat(oneRun, { times: Math.max(0, runs - 1) }))
