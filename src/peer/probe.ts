import { Effect, Result, type Scope } from "effect"
import { describeCause } from "../domain/errors.ts"
import type { ConfirmationCounts } from "./delivery-ledger.ts"

export interface ProbeOptions<E> {
  /** One round trip in ms, or a failure. */
  readonly ping: Effect.Effect<number, E>
  readonly intervalMs: number
  /** Consecutive failures after which the path counts as dead. */
  readonly failuresBeforeDead: number
  /**
   * Called with each successful sample (feeds the smoothed RTT) and the `performance.now()`
   * at which that ping was sent: the connection was alive after everything written before it.
   */
  readonly onSample: (rttMs: number, sentAt: number) => void
  /** Called once when the path is declared dead; the probe then stops. */
  readonly onDead: (reason: string) => Effect.Effect<void>
  /** Stop probing (the session closed for another reason). */
  readonly stopped: () => boolean
  /**
   * The peer's confirmations of what this session wrote, when it sends them: an interval in
   * which it confirmed something written after the interval began has shown the path alive
   * both ways, as a ping would, and skips its ping (see `skipsPingAfter`). Absent: every
   * interval pings.
   */
  readonly confirmations?: ConfirmationCounts | undefined
  /**
   * An interval in which the session wrote nothing skips its ping too, within the same bound.
   * For a peer reached over one transport only: no route waits on its idle link's liveness
   * (a dual-mode link carrying nothing is what fallback and recovery read).
   */
  readonly skipWhileQuiet?: boolean | undefined
  /** Whatever else flows, a ping goes out at least this often (default `RTT_REFRESH_MS`). */
  readonly refreshMs?: number | undefined
}

/** What a link lets stand in for its pings (both links take these options). */
export interface PingSkipping {
  /** Let the peer's acknowledgements stand in for most pings (`ProbeOptions.confirmations`). */
  readonly skipPingsWhileConfirmed?: boolean | undefined
  /** Skip most pings of a link that carries nothing too (`ProbeOptions.skipWhileQuiet`). */
  readonly skipPingsWhileQuiet?: boolean | undefined
  /** The longest run of skipped pings, in ms (`ProbeOptions.refreshMs`). */
  readonly pingRefreshMs?: number | undefined
}

/**
 * Whatever else flows, a ping goes out at least this often, so the RTT estimate that fallback,
 * recovery and the adaptive strategy read is never older than this on a busy dual-mode link.
 */
export const RTT_REFRESH_MS = 1000

/**
 * The same bound for a peer reached over one transport only: no route reads its RTT, which
 * only feeds the `raft_transport_rtt_ms` gauge and `peerStatus`. An idle cluster's links
 * otherwise ping once a second each, which cost an idle cluster a tenth to a fifth of its CPU
 * (`bench/README.md`, "Cluster").
 */
export const SINGLE_TRANSPORT_RTT_REFRESH_MS = 5000

/**
 * How many intervals in a row may skip their ping: none when the session has no
 * confirmations, else as many as keep a ping within `refreshMs`.
 */
export const skipsPingAfter = (
  intervalMs: number,
  confirmations: ConfirmationCounts | undefined,
  refreshMs: number = RTT_REFRESH_MS
): number => confirmations === undefined ? 0 : Math.max(0, Math.ceil(refreshMs / intervalMs) - 1)

/** Pause after a failed probe: the ping's own timeout already waited, but a ping that fails
 * at once (stream refused) must not spin. */
const RETRY_AFTER_FAILURE_MS = 50

/**
 * Liveness and RTT probe for one session. A path whose packets all vanish is reported closed
 * by QUIC only after its idle timeout (~35 s through Iroh) and by TCP later still, far too
 * slow for fallback: a few missed pings in a row declare it dead. After a miss the next ping
 * goes out at once rather than an interval later, so a dead path is declared after about
 * `failuresBeforeDead` ping timeouts. While the peer confirms what the session writes, the
 * confirmations stand in for most pings (`confirmations`).
 */
export const runProbe = <E>(options: ProbeOptions<E>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { confirmations } = options
    const maxSkips = skipsPingAfter(options.intervalMs, confirmations, options.refreshMs)
    let failures = 0
    let skipped = 0
    /** A confirmation count above this came for a write that ended after the interval began. */
    let mark = Number.POSITIVE_INFINITY
    /** Messages written (and confirmed) when the interval began: unchanged, it was quiet. */
    let quietMark = -1
    const skips = (c: ConfirmationCounts): boolean =>
      c.confirmed() > mark || (options.skipWhileQuiet === true && c.written() + c.confirmed() === quietMark)
    while (!options.stopped()) {
      if (failures === 0 && skipped < maxSkips && confirmations !== undefined && skips(confirmations)) {
        skipped++
      } else {
        skipped = 0
        failures = yield* pingOnce(options, failures)
        if (failures >= options.failuresBeforeDead) return
      }
      // Confirmations can run ahead of the writes they cover (a write is counted when it ends).
      mark = confirmations === undefined ? Number.POSITIVE_INFINITY : Math.max(confirmations.written(), confirmations.confirmed())
      quietMark = confirmations === undefined ? -1 : confirmations.written() + confirmations.confirmed()
      yield* Effect.sleep(failures === 0 ? options.intervalMs : Math.min(options.intervalMs, RETRY_AFTER_FAILURE_MS))
    }
  })

/** One ping: the failures in a row after it (`onDead` has run when they reach the limit). */
const pingOnce = <E>(options: ProbeOptions<E>, failuresBefore: number): Effect.Effect<number> =>
  Effect.gen(function*() {
    const sentAt = performance.now()
    const result = yield* Effect.result(options.ping)
    if (Result.isSuccess(result)) {
      options.onSample(result.success, sentAt)
      return 0
    }
    const failures = failuresBefore + 1
    yield* Effect.logDebug(`probe failed (${failures} in a row): ${describeCause(result.failure)}`)
    if (failures >= options.failuresBeforeDead) {
      yield* options.onDead(`${failures} consecutive probes failed: ${describeCause(result.failure)}`)
    }
    return failures
  })

/** Smoothing factor of the RTT estimate: the same for every transport, so they compare fairly. */
const RTT_ALPHA = 0.3

/** Exponentially weighted moving average; `undefined` until the first sample. */
export const ewma = (previous: number | undefined, sample: number, alpha = RTT_ALPHA): number =>
  previous === undefined ? sample : previous + alpha * (sample - previous)

/** What a running probe knows of its session (the `LinkSession` fields of the same names). */
export interface ProbeState {
  /** Smoothed RTT of the answered probes, in ms. */
  readonly rttMs: () => number | undefined
  /** `performance.now()` when the last answered probe was sent (0 before any). */
  readonly confirmedAt: () => number
}

/** Starts `runProbe` in the current scope and keeps the session's RTT and confirmation time. */
export const forkProbe = <E>(
  options: Omit<ProbeOptions<E>, "onSample">,
  logAnnotations: Readonly<Record<string, string>>
): Effect.Effect<ProbeState, never, Scope.Scope> =>
  Effect.gen(function*() {
    let rtt: number | undefined
    let confirmedAt = 0
    yield* Effect.forkScoped(
      runProbe({
        ...options,
        onSample: (sample, sentAt) => {
          rtt = ewma(rtt, sample)
          confirmedAt = sentAt
        }
      }).pipe(Effect.annotateLogs(logAnnotations)),
      { startImmediately: true }
    )
    return { rttMs: () => rtt, confirmedAt: () => confirmedAt }
  })
