/** What the numbers were measured on. */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { cpus, loadavg, platform, release, totalmem } from "node:os"

export interface MachineInfo {
  readonly node: string
  readonly cpus: number
  readonly cpuModel: string
  readonly platform: string
  readonly memoryGiB: number
  readonly loadAverage: string
  readonly iroh: string
  readonly effect: string
  readonly git: string
}

const packageVersion = (name: string): string => {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url)
    return (JSON.parse(readFileSync(url, "utf8")) as { version?: string }).version ?? "?"
  } catch {
    return "?"
  }
}

const git = (...args: ReadonlyArray<string>): string =>
  execFileSync("git", args, { cwd: new URL("../..", import.meta.url), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()

const gitDescription = (): string => {
  try {
    const head = git("rev-parse", "--short", "HEAD")
    const dirty = git("status", "--porcelain", "--", "src") !== ""
    return `${head}${dirty ? " (src/ has uncommitted changes)" : ""}`
  } catch {
    return "?"
  }
}

export const machineInfo = (): MachineInfo => {
  const list = cpus()
  return {
    node: process.version,
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? "?",
    platform: `${platform()} ${release()}`,
    memoryGiB: totalmem() / 2 ** 30,
    loadAverage: loadavg().map((x) => x.toFixed(2)).join(" "),
    iroh: packageVersion("@number0/iroh"),
    effect: packageVersion("effect"),
    git: gitDescription()
  }
}
