/**
 * Per-process measurement window: event-loop delay (perf_hooks histogram), event-loop
 * utilisation, CPU time and the role's own counters, between a `start` and a `stop`.
 * Everything here is synchronous so a probe is answered from the IPC handler directly,
 * without waiting for any fiber.
 */
import { cpus } from "node:os"
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type ELDHistogram } from "node:perf_hooks"

export type Counters = Readonly<Record<string, number>>

/**
 * Wall-clock ms with sub-ms precision. Every process derives it from the same system clock,
 * so times taken in different processes on one machine can be subtracted.
 */
export const epochNow = (): number => performance.timeOrigin + performance.now()

/** Event-loop lag in ms: the histogram's delay minus the sampling interval. */
export interface LagSummary {
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly mean: number
  readonly samples: number
}

export interface ProbeMark {
  /** `performance.now()` of the child (ms). */
  readonly t: number
  /** CPU time of the process so far (all threads, user + system), ms. */
  readonly cpuMs: number
  readonly counters: Counters
}

export interface ProbeWindow {
  readonly start: ProbeMark
  readonly end: ProbeMark
  readonly ms: number
  readonly cpuUserMs: number
  readonly cpuSystemMs: number
  /** Fraction of the window the event loop was busy (0..1). */
  readonly elu: number
  readonly lag: LagSummary
}

const RESOLUTION_MS = 1

export class Probe {
  private histogram: ELDHistogram | undefined
  private startMark: ProbeMark | undefined
  private cpu0: NodeJS.CpuUsage | undefined
  private elu0: EventLoopUtilization | undefined

  constructor(private readonly counters: () => Counters) {}

  mark(): ProbeMark {
    const cpu = process.cpuUsage()
    return { t: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000, counters: { ...this.counters() } }
  }

  start(): ProbeMark {
    this.histogram?.disable()
    this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.histogram.enable()
    this.cpu0 = process.cpuUsage()
    this.elu0 = performance.eventLoopUtilization()
    this.startMark = this.mark()
    return this.startMark
  }

  stop(): ProbeWindow {
    const end = this.mark()
    const start = this.startMark ?? end
    const h = this.histogram
    h?.disable()
    const cpu = process.cpuUsage(this.cpu0)
    const elu = performance.eventLoopUtilization(this.elu0)
    const toLag = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS)
    const lag: LagSummary = h === undefined || h.count === 0
      ? { p50: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN, samples: 0 }
      : {
        p50: toLag(h.percentile(50)),
        p99: toLag(h.percentile(99)),
        max: toLag(h.max),
        mean: toLag(h.mean),
        samples: h.count
      }
    this.histogram = undefined
    this.startMark = undefined
    return {
      start,
      end,
      ms: end.t - start.t,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      elu: elu.utilization,
      lag
    }
  }
}

/** How much the role's counter `key` rose over the window. */
export const counterDelta = (w: ProbeWindow, key: string): number => (w.end.counters[key] ?? 0) - (w.start.counters[key] ?? 0)

/** CPU time of the whole machine (all processes, all cores), for spotting background load. */
export interface MachineCpuMark {
  readonly t: number
  readonly busyMs: number
}

export const machineCpuMark = (): MachineCpuMark => {
  let busy = 0
  for (const cpu of cpus()) busy += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq
  return { t: performance.now(), busyMs: busy }
}

/** Cores busy on average between two marks (0..number of cores). */
export const machineCoresBusy = (from: MachineCpuMark, to: MachineCpuMark): number =>
  to.t > from.t ? (to.busyMs - from.busyMs) / (to.t - from.t) : Number.NaN

/** Cores one probed process kept busy over its window (all its threads). */
export const processCoresBusy = (w: ProbeWindow): number => (w.cpuUserMs + w.cpuSystemMs) / w.ms
