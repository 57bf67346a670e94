/**
 * Form B for `interleaved-ab.ts`: every log append on libuv's thread pool, even one the node
 * may hold its loop for (a follower's), as if `WriteOptions.mayHoldLoop` were never given.
 * Form A is the product: a follower's small append in line while appends are quick.
 */
import { FileStorage } from "../../../src/raft/file-storage.ts"
import type { WriteBatch, WriteOptions } from "../../../src/raft/storage.ts"
import { inFormB } from "./signals.ts"

const write = FileStorage.prototype.write
FileStorage.prototype.write = function(this: FileStorage, batch: WriteBatch, options?: WriteOptions) {
  return write.call(this, batch, inFormB() ? {} : options)
}
