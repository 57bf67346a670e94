/**
 * A benchmark phase's outcome: its value, or why it failed. Every phase runs under a timeout
 * and a failure (or timeout) becomes data for the report; the run goes on with the next phase.
 */
import { Cause, Duration, Effect } from "effect"
import { performance } from "node:perf_hooks"

export type PhaseOutcome<A> =
  | { readonly _tag: "ok"; readonly value: A; readonly ms: number }
  | { readonly _tag: "failed"; readonly error: string; readonly ms: number }
  | { readonly _tag: "skipped" }

/**
 * `BENCH_ONLY=raw,vote` runs only those phases: codec, raw, append, heartbeat, append-grpc,
 * heartbeat-grpc, append-ratio, vote, vote-grpc, vote-sweep, failover, cluster. Empty: every phase.
 */
export const benchOnly: ReadonlyArray<string> = (process.env["BENCH_ONLY"] ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")

export const selected = (key: string): boolean => benchOnly.length === 0 || benchOnly.includes(key)

const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (error instanceof Error && error.message !== "") return error.message
  return Cause.pretty(cause)
}

export const runPhase = <A, E>(
  key: string,
  name: string,
  timeoutMs: number,
  effect: Effect.Effect<A, E>
): Effect.Effect<PhaseOutcome<A>> =>
  Effect.suspend(() => {
    if (!selected(key)) return Effect.succeed<PhaseOutcome<A>>({ _tag: "skipped" })
    const t0 = performance.now()
    const elapsed = () => performance.now() - t0
    process.stderr.write(`[bench] ${name} ...\n`)
    return effect.pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs),
        orElse: () => Effect.fail(new Error(`timed out after ${timeoutMs} ms`))
      }),
      Effect.map((value): PhaseOutcome<A> => ({ _tag: "ok", value, ms: elapsed() })),
      Effect.catchCause((cause) => Effect.succeed<PhaseOutcome<A>>({ _tag: "failed", error: describe(cause), ms: elapsed() })),
      Effect.tap((outcome) =>
        Effect.sync(() => {
          if (outcome._tag === "ok") process.stderr.write(`[bench] ${name} done in ${(outcome.ms / 1000).toFixed(1)} s\n`)
          if (outcome._tag === "failed") {
            process.stderr.write(`[bench] ${name} FAILED after ${(outcome.ms / 1000).toFixed(1)} s:\n${outcome.error}\n`)
          }
        })
      )
    )
  })
