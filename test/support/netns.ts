import { Effect, type Scope } from "effect"
import { execFile } from "node:child_process"

/**
 * A network namespace joined to this one by a veth pair: this side has `hostAddress`, the
 * namespace `nsAddress` (a /30 of 10.0.0.0/8 picked from the pid, so parallel test processes
 * do not collide). Taking the namespace's end down makes a dark path: the route stays,
 * datagrams are dropped silently, as when a cable is pulled. Everything is removed when the
 * scope closes. Needs root (CAP_NET_ADMIN).
 */
export interface Netns {
  readonly name: string
  readonly hostAddress: string
  readonly nsAddress: string
  /** Brings the namespace's end of the pair down (dark) or up. */
  readonly setLink: (up: boolean) => Effect.Effect<void, Error>
  /** `argv` run inside the namespace: `ip netns exec <name> ...argv`. */
  readonly exec: (argv: ReadonlyArray<string>) => ReadonlyArray<string>
}

const run = (argv: ReadonlyArray<string>): Effect.Effect<void, Error> =>
  Effect.callback<void, Error>((resume) => {
    execFile(argv[0]!, argv.slice(1), (error, _stdout, stderr) => {
      resume(error === null ? Effect.void : Effect.fail(new Error(`${argv.join(" ")}: ${stderr || error.message}`)))
    })
  })

let made = 0

export const makeNetns = (): Effect.Effect<Netns, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const id = `${process.pid % 100000}x${made++}`
    const name = `rt-${id}`
    const hostIf = `rh${id}`
    const nsIf = `rn${id}`
    // 10.a.b.c/30 with a, b from the pid and c from the count: unique per process and namespace.
    const a = 100 + (process.pid % 100)
    const b = Math.floor(process.pid / 100) % 256
    const c = (made * 4) % 256
    const hostAddress = `10.${a}.${b}.${c + 1}`
    const nsAddress = `10.${a}.${b}.${c + 2}`
    const inNs = (argv: ReadonlyArray<string>) => ["ip", "netns", "exec", name, ...argv]
    yield* Effect.acquireRelease(
      Effect.gen(function*() {
        yield* run(["ip", "netns", "add", name])
        yield* run(["ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf])
        yield* run(["ip", "link", "set", nsIf, "netns", name])
        yield* run(["ip", "addr", "add", `${hostAddress}/30`, "dev", hostIf])
        yield* run(["ip", "link", "set", hostIf, "up"])
        yield* run(inNs(["ip", "addr", "add", `${nsAddress}/30`, "dev", nsIf]))
        yield* run(inNs(["ip", "link", "set", nsIf, "up"]))
        yield* run(inNs(["ip", "link", "set", "lo", "up"]))
      }),
      () =>
        // Deleting the namespace deletes its end of the pair, and with it this end.
        Effect.ignore(run(["ip", "link", "del", hostIf])).pipe(Effect.andThen(Effect.ignore(run(["ip", "netns", "del", name]))))
    )
    return {
      name,
      hostAddress,
      nsAddress,
      setLink: (up) => run(inNs(["ip", "link", "set", nsIf, up ? "up" : "down"])),
      exec: inNs
    }
  })
