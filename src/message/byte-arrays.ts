/**
 * Conversions between `Uint8Array` and the `Array<number>` that `@number0/iroh` takes and
 * returns. Plain indexed loops into pre-sized arrays: about 5x faster than `Array.from`
 * (docs/design.md, "The binding's byte conversion is the ceiling"; bench/phases/codec.ts).
 * Free of imports so the Iroh worker thread can load it natively.
 */

/**
 * V8 makes an array of 16,384 elements or more (128 KiB of slots) the slow way: making and
 * filling a fresh one cost 33-52 ns an element on the 2-core VM, against 1.3-1.9 ns below that
 * size and 0.6 ns for refilling one that exists (`bench/tools/array-cost.ts`). A 64 KiB write
 * paid that on top of the binding's own conversion.
 */
const LARGE_ARRAY_ELEMENTS = 16384
/** Arrays up to 2^18 elements (2 MiB of slots each) are kept; larger writes are rare. */
const MAX_KEPT_LOG2 = 18
/** Kept arrays by the log2 of their capacity: one per power of two in use. */
const kept: Array<Array<number> | undefined> = []

/**
 * An `Array<number>` of length `n` to fill and hand to the binding in the same synchronous
 * step: the binding copies it before its call returns (`writeAll` converts its argument to
 * bytes up front), so a large array is reused by the next call instead of made anew. Small
 * arrays are fresh (cheap). Each kept array holds lengths from just over half its capacity up
 * to all of it, a range in which V8 neither trims nor grows its storage when the length changes.
 */
export const transientArray = (n: number): Array<number> => {
  if (n < LARGE_ARRAY_ELEMENTS || n > 1 << MAX_KEPT_LOG2) return new Array<number>(n)
  const log2 = 32 - Math.clz32(n - 1)
  let array = kept[log2]
  if (array === undefined) kept[log2] = array = new Array<number>(1 << log2).fill(0)
  array.length = n
  return array
}

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
