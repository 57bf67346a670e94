/**
 * Small statistics helpers for latency samples (milliseconds unless said otherwise).
 */

import { percentileOfSorted } from "../../src/node/workload.ts"

export interface Summary {
  readonly count: number
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

export const summarize = (samples: ReadonlyArray<number>): Summary => {
  const sorted = [...samples].sort((a, b) => a - b)
  const sum = sorted.reduce((s, x) => s + x, 0)
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p90: percentileOfSorted(sorted, 90),
    p99: percentileOfSorted(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN
  }
}

/** Bytes per second as MB/s (MB = 10^6 bytes). */
export const mbPerSecond = (bytes: number, ms: number): number => (ms <= 0 ? Number.NaN : bytes / 1e6 / (ms / 1000))

export const perSecond = (count: number, ms: number): number => (ms <= 0 ? Number.NaN : count / (ms / 1000))

export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
