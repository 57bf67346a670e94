/**
 * This checkout's cluster against another checkout's (an older build, a branch), one cluster at
 * a time, alternating which goes first: `pairs` runs of `cluster-load.ts` in each, and per
 * metric the ratio this / other of every pair and their median. Runs minutes apart differ by a
 * third on the development VM; a pair's two runs are seconds apart.
 *
 *   npx tsx bench/tools/cluster-ab.ts <other_checkout> <iroh|grpc> [clients=1,64] [pairs=4]
 *
 * The other checkout needs `bench/tools/cluster-load.ts` and its dependencies installed (copy the
 * tool in for a build older than it).
 */
import { execFileSync } from "node:child_process"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { median } from "../harness/stats.ts"

const [otherArg, transportArg, clientsArg = "1,64", pairsArg = "4"] = process.argv.slice(2)
if (otherArg === undefined || (transportArg !== "iroh" && transportArg !== "grpc")) {
  process.stderr.write("usage: cluster-ab.ts <other_checkout> <iroh|grpc> [clients=1,64] [pairs=4]\n")
  process.exit(2)
}
const here = resolve(fileURLToPath(new URL("../..", import.meta.url)))
const other = resolve(otherArg)
const pairs = Number(pairsArg)

interface Load {
  readonly clients: number
  readonly putsPerSec: number
  readonly p50Ms: number
  readonly cpuUsPerPut: number
}
interface Result {
  readonly loads: ReadonlyArray<Load>
  readonly idleCpuMsPerSec: number
}

const runIn = (dir: string): Result => {
  const out = execFileSync("npx", ["tsx", "bench/tools/cluster-load.ts", transportArg, clientsArg], { cwd: dir, encoding: "utf8" })
  return JSON.parse(out.trim().split("\n").at(-1)!) as Result
}

const metrics: Array<[string, (r: Result) => number]> = []
for (const clients of clientsArg.split(",").map(Number)) {
  const at = (r: Result) => r.loads.find((l) => l.clients === clients)!
  metrics.push([`puts/s, ${clients} client(s)`, (r) => at(r).putsPerSec])
  metrics.push([`PUT p50, ${clients} client(s)`, (r) => at(r).p50Ms])
  metrics.push([`CPU per put, ${clients} client(s)`, (r) => at(r).cpuUsPerPut])
}
metrics.push(["idle CPU", (r) => r.idleCpuMsPerSec])

const ratios = metrics.map(() => [] as Array<number>)
for (let pair = 0; pair < pairs; pair++) {
  const first = pair % 2 === 0 ? here : other
  const a = runIn(first)
  const b = runIn(first === here ? other : here)
  const [mine, theirs] = first === here ? [a, b] : [b, a]
  metrics.forEach(([, get], i) => ratios[i]!.push(get(mine) / get(theirs)))
  process.stderr.write(`pair ${pair + 1}: ${metrics.map(([name, get]) => `${name} ${get(mine).toFixed(1)} / ${get(theirs).toFixed(1)}`).join("; ")}\n`)
}
process.stdout.write(`${transportArg}: this checkout / ${other}, median of ${pairs} pairs (each pair in brackets)\n`)
metrics.forEach(([name], i) => {
  const xs = ratios[i]!
  process.stdout.write(`  ${name}: ${median(xs).toFixed(2)}x (${xs.map((x) => x.toFixed(2)).join(", ")})\n`)
})
