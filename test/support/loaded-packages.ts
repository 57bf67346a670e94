/**
 * Child process for the subpath isolation test: imports the module named by argv[2] and
 * prints, as one JSON line, the npm packages that import loaded through Node's CommonJS
 * loader (grpc-js and the Iroh napi binding are CommonJS, so loading either shows up here).
 */
import { createRequire } from "node:module"

const specifier = process.argv[2]
if (specifier === undefined) throw new Error("usage: loaded-packages.ts <module>")
const before = new Set(Object.keys(createRequire(import.meta.url).cache))
await import(specifier)
const packages = new Set<string>()
for (const file of Object.keys(createRequire(import.meta.url).cache)) {
  if (before.has(file)) continue
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)
  if (match?.[1] !== undefined) packages.add(match[1])
}
process.stdout.write(`${JSON.stringify([...packages].sort())}\n`)
