/**
 * Conversions between `Uint8Array` and the `Array<number>` that `@number0/iroh` takes and
 * returns. Plain indexed loops into pre-sized arrays: about 5x faster than `Array.from`
 * (docs/design.md, "The binding.s byte conversion is the ceiling"; bench/phases/codec.ts). Free of imports so the Iroh worker
 * thread can load it natively.
 */

/** Copies `bytes` into `out` at `at` (a fresh array by default). */
export const bytesToArray = (bytes: Uint8Array, out: Array<number> = new Array<number>(bytes.length), at = 0): Array<number> => {
  const n = bytes.length
  for (let i = 0; i < n; i++) out[at + i] = bytes[i]!
  return out
}

/** Into a fresh `Uint8Array` that owns its buffer (so it can be transferred). */
export const arrayToBytes = (array: ReadonlyArray<number>): Uint8Array => {
  const n = array.length
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = array[i]!
  return out
}
