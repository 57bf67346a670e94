/**
 * The append ratio measured in pairs: raw ceiling and transport runs alternate
 * (raw, append, raw, append, ..., raw), and each append run is compared with the mean of the
 * raw runs either side of it. On a VM whose speed drifts by a third within minutes (two raw
 * runs three minutes apart read 7.6 and 10.2 MB/s), a transport rate divided by a ceiling
 * measured at another time is mostly noise; adjacent runs see the same machine.
 */
import { Effect } from "effect"
import { join } from "node:path"
import type { PeerProcessFailed } from "../harness/ipc.ts"
import { runRawCeiling } from "./raw-ceiling.ts"
import { median } from "../harness/stats.ts"
import { runTransportThroughput } from "./transport-throughput.ts"
import { COMPRESSION_OFF } from "./compression.ts"
import type { FlowOptions } from "../harness/windows.ts"

interface AppendRatioPair {
  /** Raw ceiling MB/s just before and just after the append run. */
  readonly rawBefore: number
  readonly rawAfter: number
  /** The append run: framed MB/s and messages/s. */
  readonly appendMbPerSec: number
  readonly appendMsgsPerSec: number
  /** `appendMbPerSec` over the mean of the two raw runs. */
  readonly ratio: number
}

export interface AppendRatioResult {
  readonly pairs: ReadonlyArray<AppendRatioPair>
  readonly medianRatio: number
}

export const runAppendRatio = (
  options: FlowOptions & { readonly pairs: number; readonly keyDir: string }
): Effect.Effect<AppendRatioResult, PeerProcessFailed> =>
  Effect.gen(function*() {
    const raw = Effect.map(runRawCeiling(options), (r) => r.mbPerSec)
    let rawBefore = yield* raw
    const pairs: Array<AppendRatioPair> = []
    for (let i = 0; i < options.pairs; i++) {
      const append = yield* runTransportThroughput({
        ...options,
        kind: "append",
        keyDir: join(options.keyDir, `pair-${i}`),
        // The ratio is the transport's own cost against the raw ceiling at the same bytes.
        overrides: COMPRESSION_OFF
      })
      const rawAfter = yield* raw
      pairs.push({
        rawBefore,
        rawAfter,
        appendMbPerSec: append.mbPerSec,
        appendMsgsPerSec: append.msgsPerSec,
        ratio: append.mbPerSec / ((rawBefore + rawAfter) / 2)
      })
      rawBefore = rawAfter
    }
    return { pairs, medianRatio: median(pairs.map((p) => p.ratio)) }
  })
