/**
 * Loaded into each node of `put-timeline.ts` (`--import`, before the node's own modules): marks
 * the moments a PUT passes through, from outside the product's code, by wrapping what the node
 * calls (Node's HTTP server and `fs.write`, the Iroh binding's stream calls, `RaftCore`).
 *
 * Each mark is `<µs since the epoch> <pid> <label>`, appended to `$PUT_TIMELINE_FILE` every
 * 200 ms. The clock is `performance.timeOrigin + performance.now()`: the same across the
 * processes of one machine to within microseconds.
 */
import iroh from "@number0/iroh"
import fs from "node:fs"
import http from "node:http"
import { syncBuiltinESMExports } from "node:module"
import { RaftCore } from "../../src/raft/core.ts"
import type { RaftMessage } from "../../src/message/types.ts"

const file = process.env["PUT_TIMELINE_FILE"]
const marks: Array<string> = []
const mark = (label: string): void => {
  marks.push(`${((performance.timeOrigin + performance.now()) * 1000).toFixed(0)} ${process.pid} ${label}`)
}
const flush = () => {
  if (file === undefined || marks.length === 0) return
  fs.appendFileSync(file, marks.join("\n") + "\n")
  marks.length = 0
}
setInterval(flush, 200).unref()
process.on("exit", flush)

// The API's requests and replies (the metrics server is not scraped during a run).
type Untyped = (this: unknown, ...args: Array<unknown>) => unknown
const emit = http.Server.prototype.emit as Untyped
http.Server.prototype.emit = function(this: unknown, ...args: Array<unknown>) {
  if (args[0] === "request") mark("request")
  return emit.apply(this, args)
} as http.Server["emit"]
const end = http.ServerResponse.prototype.end as Untyped
http.ServerResponse.prototype.end = function(this: unknown, ...args: Array<unknown>) {
  const result = end.apply(this, args)
  mark("reply")
  return result
} as http.ServerResponse["end"]

// The log's appends: submitted to libuv's pool, and durable (the log is opened `O_DSYNC`).
const write = fs.write
fs.write = function(...args: Array<unknown>) {
  const done = args.pop() as (...results: Array<unknown>) => void
  mark("log-write")
  return (write as (...a: Array<unknown>) => void)(...args, (...results: Array<unknown>) => {
    mark("log-durable")
    done(...results)
  })
} as typeof fs.write
syncBuiltinESMExports()

// Iroh: a write call (and when it returned: the binding converts the bytes synchronously) and a
// read that completed, with its length.
const { RecvStream, SendStream } = iroh
const writeAll = SendStream.prototype.writeAll
SendStream.prototype.writeAll = function(this: InstanceType<typeof SendStream>, buf: Array<number>) {
  mark(`net-write ${buf.length}`)
  const result = writeAll.call(this, buf)
  mark("net-write-returned")
  return result
}
const read = RecvStream.prototype.read
RecvStream.prototype.read = function(this: InstanceType<typeof RecvStream>, limit: number) {
  return read.call(this, limit).then((bytes) => {
    mark(`net-read ${bytes.length}`)
    return bytes
  })
}

// Raft: a proposal taken by the leader, and each message stepped (type and sender).
const propose = RaftCore.prototype.propose
RaftCore.prototype.propose = function(this: RaftCore, ...args: Parameters<RaftCore["propose"]>) {
  mark("propose")
  return propose.apply(this, args)
}
const step = RaftCore.prototype.step
RaftCore.prototype.step = function(this: RaftCore, m: RaftMessage, now: number) {
  mark(`step ${m.msgType} ${m.from}`)
  return step.call(this, m, now)
}
