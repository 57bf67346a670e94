/**
 * Optional V8 CPU profiles of exactly the probe windows: with `BENCH_CPU_PROF=<dir>`, each
 * peer process profiles its main thread from `probe-start` to `probe-stop` and writes
 * `<dir>/<role>-<n>.cpuprofile` (open in Chrome DevTools, or summarise with
 * `tsx bench/profile-summary.ts <file>`).
 */
import { writeFileSync } from "node:fs"
import { Session } from "node:inspector"
import { join } from "node:path"

export class WindowProfiler {
  private session: Session | undefined
  private windows = 0

  constructor(private readonly dir: string | undefined, private readonly name: string) {}

  start(): void {
    if (this.dir === undefined || this.dir === "") return
    if (this.session === undefined) {
      this.session = new Session()
      this.session.connect()
      this.session.post("Profiler.enable")
      this.session.post("Profiler.setSamplingInterval", { interval: 100 })
    }
    this.session.post("Profiler.start")
  }

  stop(): void {
    const session = this.session
    const dir = this.dir
    if (session === undefined || dir === undefined) return
    const file = join(dir, `${this.name}-${++this.windows}.cpuprofile`)
    session.post("Profiler.stop", (error, result) => {
      if (error === null) writeFileSync(file, JSON.stringify(result.profile))
    })
  }
}
