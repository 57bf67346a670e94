/**
 * Form B for `interleaved-ab.ts`: every small log append in line while appends are quick, a
 * leader's too, as if every write were told `WriteOptions.mayHoldLoop`. Form A is the product,
 * where only a round that sent nothing (a follower's) lets its append hold the loop.
 */
import { FileStorage } from "../../../src/raft/file-storage.ts"
import type { WriteBatch, WriteOptions } from "../../../src/raft/storage.ts"
import { inFormB } from "./signals.ts"

const write = FileStorage.prototype.write
FileStorage.prototype.write = function(this: FileStorage, batch: WriteBatch, options?: WriteOptions) {
  return write.call(this, batch, inFormB() ? { mayHoldLoop: true } : options)
}
