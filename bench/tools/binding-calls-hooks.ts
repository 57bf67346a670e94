/**
 * Loaded into each node by `binding-calls.ts` (`--import`): counts the calls made into the Iroh
 * binding's connection and stream objects, by method, and the bytes handed to `writeAll`. On
 * SIGUSR1 the node writes its counts so far to `$BINDING_CALLS_DIR/<pid>.json`.
 */
import { renameSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import iroh from "../../src/iroh/native.ts"

const counts: Record<string, number> = { "writeAll bytes": 0 }
const classes: Record<string, { prototype: object } | undefined> = {
  Connection: iroh.Connection,
  SendStream: iroh.SendStream,
  RecvStream: iroh.RecvStream,
  BiStream: iroh.BiStream
}

for (const [name, cls] of Object.entries(classes)) {
  if (cls === undefined) continue
  const proto = cls.prototype as Record<string, unknown>
  for (const method of Object.getOwnPropertyNames(proto)) {
    // Descriptors, not reads: the binding's getters throw when read on the prototype.
    const original: unknown = Object.getOwnPropertyDescriptor(proto, method)?.value
    if (method === "constructor" || typeof original !== "function") continue
    const key = `${name}.${method}`
    counts[key] = 0
    proto[method] = function(this: unknown, ...args: Array<unknown>): unknown {
      counts[key]!++
      if (method === "writeAll" && Array.isArray(args[0])) counts["writeAll bytes"]! += args[0].length
      return Reflect.apply(original, this, args)
    }
  }
}

process.on("SIGUSR1", () => {
  const dir = process.env["BINDING_CALLS_DIR"]
  if (dir === undefined) return
  // Renamed into place: the tool reads the file as soon as it exists.
  const file = join(dir, `${process.pid}.json`)
  writeFileSync(`${file}.tmp`, JSON.stringify(counts))
  renameSync(`${file}.tmp`, file)
})
