/**
 * For form modules that change what the write pipeline tells the log storage: in form B every
 * `FileStorage.write` gets `inFormB` instead of the options it was given.
 */
import { FileStorage } from "../../../src/raft/file-storage.ts"
import type { WriteBatch, WriteOptions } from "../../../src/raft/storage.ts"
import { inFormB } from "./signals.ts"

export const writesInFormB = (optionsInFormB: WriteOptions): void => {
  const write = FileStorage.prototype.write
  FileStorage.prototype.write = function(this: FileStorage, batch: WriteBatch, options?: WriteOptions) {
    return write.call(this, batch, inFormB() ? optionsInFormB : options)
  }
}
