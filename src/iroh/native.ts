/**
 * The `@number0/iroh` binding, for every module of this package that calls it: importing it
 * from here turns off the backtraces Rust would otherwise attach to the binding's errors.
 *
 * With `RUST_BACKTRACE=1` in the environment (common where Rust is built), each error the
 * binding returns captures a backtrace, and turning it into a JS error symbolises it on a
 * thread of the binding's shared runtime, under a lock they all take: up to 285 ms when its
 * frames are not cached. A connection's close fails every call pending on it at once, and the
 * process's runtime threads then did nothing else for 180-290 ms: every other connection, of
 * every endpoint, stood still (docs/design.md, "Dark paths"). `RUST_LIB_BACKTRACE` governs
 * these captures only (a panic still prints its backtrace); a value the user set is kept
 * (`test/process/binding-backtrace.test.ts`).
 *
 * Set when this module loads, before any call can fail: Rust reads the variable once, at the
 * first capture. Node passes a main-thread assignment to the process environment, which the
 * binding reads; the worker thread (`worker-main.ts`) only starts after the main thread loaded
 * this module through `endpoint.ts`. Node loads this file natively in that worker, so it keeps
 * to erasable TypeScript.
 */
import iroh from "@number0/iroh"

if (process.env["RUST_LIB_BACKTRACE"] === undefined) process.env["RUST_LIB_BACKTRACE"] = "0"

export default iroh
