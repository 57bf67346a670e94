/**
 * Optional V8 profiles of exactly the probe windows, written per peer process as
 * `<dir>/<role>-<n>.<kind>`:
 * - `BENCH_CPU_PROF=<dir>`: a CPU profile of the main thread (`.cpuprofile`; open in Chrome
 *   DevTools, or summarise with `tsx bench/tools/profile-summary.ts <file>`);
 * - `BENCH_HEAP_PROF=<dir>`: a sampling allocation profile that keeps objects the GC has
 *   already collected (`.heapprofile`; summarise with `tsx bench/tools/heap-profile-summary.ts
 *   <file>`), which shows where garbage comes from, not only what stays live.
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"
import { join } from "node:path"

export class WindowProfiler {
  private session: Session | undefined
  private windows = 0

  constructor(
    private readonly cpuDir: string | undefined,
    private readonly heapDir: string | undefined,
    private readonly name: string
  ) {}

  private connect(): Session {
    if (this.session === undefined) {
      this.session = new Session()
      this.session.connect()
    }
    return this.session
  }

  start(): void {
    if (this.cpuDir !== undefined && this.cpuDir !== "") {
      const session = this.connect()
      if (this.windows === 0) {
        session.post("Profiler.enable")
        session.post("Profiler.setSamplingInterval", { interval: 100 })
      }
      session.post("Profiler.start")
    }
    if (this.heapDir !== undefined && this.heapDir !== "") {
      const session = this.connect()
      if (this.windows === 0) session.post("HeapProfiler.enable")
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: process.env["BENCH_HEAP_PROF_MINOR"] !== "0"
      })
    }
  }

  stop(): void {
    const session = this.session
    if (session === undefined) return
    const n = ++this.windows
    const cpuDir = this.cpuDir
    const heapDir = this.heapDir
    if (cpuDir !== undefined && cpuDir !== "") {
      session.post("Profiler.stop", (error, result) => {
        if (error === null) writeFileSync(join(cpuDir, `${this.name}-${n}.cpuprofile`), JSON.stringify(result.profile))
      })
    }
    if (heapDir !== undefined && heapDir !== "") {
      session.post("HeapProfiler.stopSampling", (error, result) => {
        if (error === null) writeFileSync(join(heapDir, `${this.name}-${n}.heapprofile`), JSON.stringify(result.profile))
      })
    }
  }
}
