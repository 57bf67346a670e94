/**
 * Form B for `interleaved-ab.ts`: every log append on libuv's thread pool, even one the node
 * may hold its loop for (a follower's), as if `WriteOptions.mayHoldLoop` were never given.
 * Form A is the product: a follower's small append in line while appends are quick.
 */
import { writesInFormB } from "./write-options.ts"

writesInFormB({})
