/**
 * What an `Array<number>` of each size costs to make and fill from a `Uint8Array`, the way a
 * write to the Iroh binding needs one: fresh (`new Array(n)`), and from `transientArray`
 * (`src/message/byte-arrays.ts`), which reuses large ones. Fastest of 5 passes, ns per element.
 * V8 makes arrays of 16,384 elements or more (128 KiB of slots) the slow way, and the binding's
 * reads give it arrays of the size asked for: this is why a read asks for 12 KiB at most.
 *
 *   npx tsx bench/tools/array-cost.ts
 */
import { bytesToArray, transientArray } from "../../src/message/byte-arrays.ts"

const source = new Uint8Array(300_000).map((_, i) => (i * 131) & 0xff)
const ELEMENTS_PER_PASS = 20_000_000

const nsPerElement = (size: number, make: (n: number) => Array<number>): number => {
  const bytes = source.subarray(0, size)
  let best = Number.POSITIVE_INFINITY
  for (let pass = 0; pass < 5; pass++) {
    const t0 = performance.now()
    let n = 0
    while (n < ELEMENTS_PER_PASS) n += bytesToArray(bytes, make(size)).length
    best = Math.min(best, ((performance.now() - t0) * 1e6) / n)
  }
  return best
}

console.log("| elements | fresh, ns each | transientArray, ns each |")
console.log("|---|---|---|")
for (const size of [4096, 12288, 16000, 16384, 20000, 65536, 200_000]) {
  const fresh = nsPerElement(size, (n) => new Array<number>(n))
  const reused = nsPerElement(size, transientArray)
  console.log(`| ${size} | ${fresh.toFixed(1)} | ${reused.toFixed(1)} |`)
}
