/**
 * package.json against what it promises: every subpath has types and JavaScript in dist/ and
 * its source in src/, the Node range covers every runtime dependency's and is the one the
 * README states, `effect` is a peer, and nothing but what users need is listed in `files`.
 * (The consumer check, scripts/consumer-check.sh, then installs the real tarball.)
 */
import { describe, expect, it } from "@effect/vitest"
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(`${ROOT}${path}`, "utf8"))
const manifest = readJson("package.json") as {
  exports: Record<string, string | Record<string, string>>
  engines: { node: string }
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  files: Array<string>
  bin: Record<string, string>
}

/** `">=22.19.0"` -> [22, 19, 0]; other range forms are not used here. */
const minimumOf = (range: string): [number, number, number] => {
  const m = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim())
  if (m === null) throw new Error(`unexpected engines range ${JSON.stringify(range)}`)
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]
}
const compare = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) =>
  a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!

describe("package.json", () => {
  it("every subpath has a source entry, types and JavaScript under dist/", () => {
    const subpaths = Object.keys(manifest.exports).filter((k) => k !== "./package.json")
    expect(subpaths).toEqual([".", "./raft", "./node", "./testing"])
    for (const subpath of subpaths) {
      const entry = manifest.exports[subpath] as Record<string, string>
      // The source condition first, so the repository's type check resolves to src/.
      expect(Object.keys(entry)).toEqual(["raft-transport-source", "types", "default"])
      expect(existsSync(`${ROOT}${entry["raft-transport-source"]}`), subpath).toBe(true)
      expect(entry["types"]).toMatch(/^\.\/dist\/.*\.d\.ts$/)
      expect(entry["default"]).toBe(entry["types"]!.replace(/\.d\.ts$/, ".js"))
      expect(entry["default"]!.replace(/^\.\/dist\//, "./src/").replace(/\.js$/, ".ts")).toBe(entry["raft-transport-source"])
    }
    expect(manifest.bin).toEqual({ "raft-node": "./dist/node/main.js" })
    expect(readFileSync(`${ROOT}src/node/main.ts`, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true)
  })

  it("engines covers every runtime dependency's Node range, and the README states it", () => {
    const ours = minimumOf(manifest.engines.node)
    for (const name of Object.keys(manifest.dependencies)) {
      const range = (readJson(`node_modules/${name}/package.json`)["engines"] as { node?: string } | undefined)?.node
      if (range === undefined) continue
      const theirs = /^>=/.test(range.trim()) ? minimumOf(range) : undefined
      if (theirs !== undefined) expect(compare(ours, theirs), `${name} needs ${range}`).toBeGreaterThanOrEqual(0)
    }
    const stated = `Node.js >= ${ours[0]}.${ours[1]}`
    expect(readFileSync(`${ROOT}README.md`, "utf8")).toContain(stated)
  })

  it("effect is a peer dependency only, and files lists nothing but what users need", () => {
    expect(Object.keys(manifest.peerDependencies)).toEqual(["effect"])
    expect(manifest.dependencies["effect"]).toBeUndefined()
    for (const pattern of manifest.files) expect(pattern).toMatch(/^(dist\/|src\/\*\*\/\*\.ts$|proto\/|CHANGELOG\.md$)/)
  })
})
