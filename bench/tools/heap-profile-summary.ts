/**
 * Summarises a V8 sampling heap profile (from `BENCH_HEAP_PROF`): bytes allocated by function
 * (self), and by the project function nearest to each allocation on its stack.
 *
 *   npx tsx bench/tools/heap-profile-summary.ts /tmp/prof/transport-receiver-1.heapprofile [top=25]
 */
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface HeapNode {
  readonly callFrame: CallFrame
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapNode>
}

const [file, topArg] = process.argv.slice(2)
if (file === undefined) {
  console.error("usage: tsx bench/tools/heap-profile-summary.ts <file.heapprofile> [top]")
  process.exit(2)
}
const top = Number(topArg ?? 25)
const head = (JSON.parse(readFileSync(file, "utf8")) as { head: HeapNode }).head

const shortUrl = (url: string): string => {
  const i = url.indexOf("/node_modules/")
  if (i >= 0) return url.slice(i + 14)
  const s = url.indexOf("/src/")
  if (s >= 0) return url.slice(s + 1)
  const b = url.indexOf("/bench/")
  return b >= 0 ? url.slice(b + 1) : url
}
const label = (f: CallFrame): string => `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}:${f.lineNumber + 1}`
const isProject = (f: CallFrame): boolean => /\/(src|bench)\//.test(f.url) && !f.url.includes("node_modules")

const bySelf = new Map<string, number>()
const byProject = new Map<string, number>()
let total = 0
const walk = (node: HeapNode, nearestProject: string): void => {
  const here = isProject(node.callFrame) ? label(node.callFrame) : nearestProject
  if (node.selfSize > 0) {
    total += node.selfSize
    const key = label(node.callFrame)
    bySelf.set(key, (bySelf.get(key) ?? 0) + node.selfSize)
    const pair = `${here}  <-  ${key}`
    byProject.set(pair, (byProject.get(pair) ?? 0) + node.selfSize)
  }
  for (const child of node.children) walk(child, here)
}
walk(head, "(no project frame)")

const print = (title: string, m: Map<string, number>): void => {
  console.log(`\n${title}:`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(v / 1e6).toFixed(1).padStart(8)} MB ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`)
  }
}
console.log(`allocated (sampled estimate): ${(total / 1e6).toFixed(1)} MB`)
print("self, by function", bySelf)
print("by nearest project function <- allocating function", byProject)
