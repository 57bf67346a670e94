/**
 * Form B for `interleaved-ab.ts`: every small log append in line while appends are quick, a
 * leader's too, as if every write were told `WriteOptions.mayHoldLoop`. Form A is the product,
 * where only a round that sent nothing (a follower's) lets its append hold the loop.
 */
import { writesInFormB } from "./write-options.ts"

writesInFormB({ mayHoldLoop: true })
