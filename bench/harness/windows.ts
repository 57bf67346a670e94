/**
 * A steady-state measurement split into consecutive windows. One probe spans them all (CPU,
 * event-loop use and lag for the whole stretch); marks between windows give each window's
 * counters, and the machine's CPU is sampled per window so background load from other
 * processes shows up next to the number it may have disturbed. Phases report the median of
 * the undisturbed windows (`quietMedian`).
 */
import { Duration, Effect } from "effect"
import type { FirstMsg, PeerProcessFailed } from "./ipc.ts"
import { median } from "./stats.ts"
import type { PeerProcess } from "./peer-processes.ts"
import { type Counters, machineCoresBusy, machineCpuMark, type ProbeMark, type ProbeWindow, processCoresBusy } from "./probe.ts"

export interface Window {
  readonly ms: number
  /** Counter increments over the window, per process (in the order the processes were given). */
  readonly deltas: ReadonlyArray<Counters>
  /** Cores busy machine-wide during the window. */
  readonly machineCores: number
  /** Of those, cores not used by the probed processes: other work on the machine. */
  readonly backgroundCores: number
}

export interface Windows {
  readonly windows: ReadonlyArray<Window>
  /** The whole stretch, per process. */
  readonly probes: ReadonlyArray<ProbeWindow>
  readonly machineCores: number
  /** Machine cores busy beyond the probed processes' own use, over the whole stretch. */
  readonly backgroundCores: number
}

const counterDiff = (a: ProbeMark, b: ProbeMark): Counters => {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(b.counters)) out[k] = v - (a.counters[k] ?? 0)
  return out
}

const measureWindows = (
  processes: ReadonlyArray<PeerProcess>,
  count: number,
  windowMs: number
): Effect.Effect<Windows, PeerProcessFailed> =>
  Effect.gen(function*() {
    const start = machineCpuMark()
    let previous = yield* Effect.forEach(processes, (p) => p.probeStart)
    let machine = start
    const windows: Array<Window> = []
    for (let i = 0; i < count; i++) {
      yield* Effect.sleep(Duration.millis(windowMs))
      const marks = yield* Effect.forEach(processes, (p) => p.probeMark)
      const now = machineCpuMark()
      const ms = marks[0]!.t - previous[0]!.t
      const machineCores = machineCoresBusy(machine, now)
      const ours = marks.reduce((n, m, j) => n + (m.cpuMs - previous[j]!.cpuMs), 0) / ms
      windows.push({
        ms,
        deltas: marks.map((m, j) => counterDiff(previous[j]!, m)),
        machineCores,
        backgroundCores: Math.max(0, machineCores - ours)
      })
      previous = marks
      machine = now
    }
    const probes = yield* Effect.forEach(processes, (p) => p.probeStop)
    const machineCores = machineCoresBusy(start, machineCpuMark())
    const ours = probes.reduce((n, w) => n + processCoresBusy(w), 0)
    return { windows, probes, machineCores, backgroundCores: Math.max(0, machineCores - ours) }
  })

export interface FlowOptions {
  readonly warmupMs: number
  readonly windows: number
  readonly windowMs: number
}

/**
 * One steady-state flow from `sender` to `receiver`: start the sender, wait for the receiver's
 * first delivery and a warm-up, measure the windows (`deltas[0]` is the receiver's), stop the
 * sender. Its roles use `runFromStartToStop` and send `first` on their first delivery.
 */
export const measureFlow = (
  receiver: PeerProcess,
  sender: PeerProcess,
  options: FlowOptions
): Effect.Effect<Windows & { readonly receiver: ProbeWindow; readonly sender: ProbeWindow }, PeerProcessFailed> =>
  Effect.gen(function*() {
    yield* sender.send({ type: "start" })
    yield* receiver.next<FirstMsg>("first", 20_000)
    yield* Effect.sleep(Duration.millis(options.warmupMs))
    const measured = yield* measureWindows([receiver, sender], options.windows, options.windowMs)
    yield* sender.request({ type: "stop" }, 10_000)
    return { ...measured, receiver: measured.probes[0]!, sender: measured.probes[1]! }
  })

/** Background load (cores used by other processes) above which a window counts as disturbed. */
export const BACKGROUND_LIMIT_CORES = 0.25

/**
 * The median of `value` over the windows without background load, or over all of them when
 * every window was disturbed. Other work on the machine only ever lowers a rate, so dropping
 * disturbed windows removes a one-sided error.
 */
export const quietMedian = <W extends { readonly backgroundCores: number }>(
  windows: ReadonlyArray<W>,
  value: (w: W) => number
): number => {
  const quiet = windows.filter((w) => w.backgroundCores <= BACKGROUND_LIMIT_CORES)
  return median((quiet.length > 0 ? quiet : windows).map(value))
}
