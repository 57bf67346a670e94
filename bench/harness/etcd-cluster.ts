/**
 * A three-member etcd cluster on loopback, the cluster phase's yardstick: the same HTTP client
 * and workload as the Raft key-value nodes (`src/node/workload.ts`), through etcd's v3 JSON
 * gateway (`POST /v3/kv/put`, `POST /v3/kv/range`). etcd keeps its defaults: its WAL is
 * fsynced before a put is acknowledged, as our nodes' log with `sync = "batch"`.
 *
 * Needs an `etcd` binary on PATH (Debian: `apt-get install etcd-server`); `etcdBinary()` says
 * whether there is one.
 */
import { Clock, Data, Deferred, Effect, Exit, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { accessSync, constants, mkdirSync, openSync, closeSync, readFileSync } from "node:fs"
import { delimiter, join } from "node:path"
import type { NodeUnreachable } from "../../src/node/cluster/errors.ts"
import { type HttpReply, request } from "../../src/node/cluster/http-client.ts"
import { freePorts } from "../../src/node/cluster/ports.ts"
import type { KvCluster } from "../../src/node/workload.ts"

export class EtcdError extends Data.TaggedError("EtcdError")<{ readonly message: string; readonly cause?: unknown }> {}

/** The `etcd` executable on PATH, or undefined. */
export const etcdBinary = (): string | undefined => {
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir === "") continue
    const candidate = join(dir, "etcd")
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  return undefined
}

/** `etcd --version`'s first line, e.g. "etcd Version: 3.4.23". */
export const etcdVersion = (binary: string): Effect.Effect<string, EtcdError> =>
  Effect.callback<string, EtcdError>((resume) => {
    const child = spawn(binary, ["--version"], { stdio: ["ignore", "pipe", "ignore"] })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => void (out += chunk.toString()))
    child.once("error", (cause) => resume(Effect.fail(new EtcdError({ message: `etcd --version: ${cause.message}`, cause }))))
    child.once("exit", () => resume(Effect.succeed((out.split("\n")[0] ?? "").trim())))
  })

interface Member {
  readonly id: number
  readonly name: string
  /** `127.0.0.1:port` of the client (and JSON gateway) listener. */
  readonly http: string
  readonly peer: string
  readonly dataDir: string
  readonly logFile: string
}

const encode = (s: string) => Buffer.from(s).toString("base64")

const tail = (file: string): string => {
  try {
    return readFileSync(file, "utf8").slice(-2000)
  } catch {
    return "(no log)"
  }
}

/**
 * `BENCH_ETCD_SCHEDULING=batch`: the members run as `SCHED_BATCH` (under `chrt -b`), as our
 * nodes do by default (`[process] scheduling`), to compare the two under the same scheduling.
 */
const batch = process.env["BENCH_ETCD_SCHEDULING"] === "batch"

/** Starts one member and resolves with its pid; it is SIGKILLed when the scope closes. */
const spawnMember = (binary: string, member: Member, initialCluster: string): Effect.Effect<number, EtcdError, Scope.Scope> =>
  Effect.gen(function*() {
    const child: ChildProcess = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const log = openSync(member.logFile, "a")
          try {
            const args = [
              "--name", member.name,
              "--data-dir", member.dataDir,
              "--listen-client-urls", `http://${member.http}`,
              "--advertise-client-urls", `http://${member.http}`,
              "--listen-peer-urls", `http://${member.peer}`,
              "--initial-advertise-peer-urls", `http://${member.peer}`,
              "--initial-cluster", initialCluster,
              "--initial-cluster-state", "new",
              "--initial-cluster-token", "raft-transport-bench",
              "--logger", "zap",
              "--log-level", "warn"
            ]
            // `chrt` execs etcd, so the pid measured is the member's.
            return batch
              ? spawn("chrt", ["-b", "0", binary, ...args], { stdio: ["ignore", log, log] })
              : spawn(binary, args, { stdio: ["ignore", log, log] })
          } finally {
            closeSync(log)
          }
        },
        catch: (cause) => new EtcdError({ message: `cannot start etcd ${member.name}: ${String(cause)}`, cause })
      }),
      (c) =>
        Effect.callback<void>((resume) => {
          if (c.exitCode !== null || c.signalCode !== null) return resume(Effect.void)
          c.once("exit", () => resume(Effect.void))
          c.kill("SIGKILL")
        })
    )
    const failed = yield* Deferred.make<never, EtcdError>()
    child.once("error", (cause) => Deferred.doneUnsafe(failed, Exit.fail(new EtcdError({ message: `etcd ${member.name}: ${cause.message}`, cause }))))
    child.once("exit", (code, signal) =>
      Deferred.doneUnsafe(failed, Exit.fail(new EtcdError({ message: `etcd ${member.name} exited (${signal ?? code}):\n${tail(member.logFile)}` }))))
    if (child.pid === undefined) return yield* Deferred.await(failed)
    return child.pid
  })

export class EtcdCluster implements KvCluster {
  private constructor(private readonly members: ReadonlyArray<Member>, readonly pids: ReadonlyArray<number>) {}

  /** Starts `nodes` members in `dir` and waits until they agree on a leader. */
  static make(binary: string, dir: string, nodes = 3): Effect.Effect<EtcdCluster, EtcdError, Scope.Scope> {
    return Effect.gen(function*() {
      const ports = yield* Effect.mapError(freePorts(2 * nodes, 0), (e) => new EtcdError({ message: e.message, cause: e }))
      const members: Array<Member> = Array.from({ length: nodes }, (_, i) => ({
        id: i + 1,
        name: `m${i + 1}`,
        http: `127.0.0.1:${ports.tcp[i]}`,
        peer: `127.0.0.1:${ports.tcp[nodes + i]}`,
        dataDir: join(dir, `m${i + 1}`),
        logFile: join(dir, `m${i + 1}.log`)
      }))
      for (const m of members) mkdirSync(m.dataDir, { recursive: true })
      const initialCluster = members.map((m) => `${m.name}=http://${m.peer}`).join(",")
      const pids = yield* Effect.forEach(members, (m) => spawnMember(binary, m, initialCluster))
      return new EtcdCluster(members, pids)
    })
  }

  private member(id: number): Member {
    const m = this.members.find((x) => x.id === id)
    if (m === undefined) throw new Error(`no etcd member ${id}`)
    return m
  }

  running(): ReadonlyArray<number> {
    return this.members.map((m) => m.id)
  }

  put(id: number, key: string, value: string, timeoutMs?: number): Effect.Effect<HttpReply, NodeUnreachable> {
    return request(this.member(id), "POST", "/v3/kv/put", {
      body: JSON.stringify({ key: encode(key), value: encode(value) }),
      timeoutMs: (timeoutMs ?? 10_000) + 2000
    })
  }

  get(id: number, key: string, timeoutMs?: number): Effect.Effect<HttpReply, NodeUnreachable> {
    return request(this.member(id), "POST", "/v3/kv/range", {
      body: JSON.stringify({ key: encode(key) }),
      timeoutMs: (timeoutMs ?? 10_000) + 2000
    })
  }

  /** The member every member names as leader (ids 1..n), once they agree; fails after `timeoutMs`. */
  waitForLeader(timeoutMs = 20_000): Effect.Effect<number, EtcdError> {
    return Effect.gen({ self: this }, function*() {
      const deadline = (yield* Clock.currentTimeMillis) + timeoutMs
      let last = ""
      while ((yield* Clock.currentTimeMillis) < deadline) {
        const statuses = yield* Effect.forEach(this.members, (m) =>
          Effect.option(request(m, "POST", "/v3/maintenance/status", { body: "{}", timeoutMs: 1000 })))
        const seen = statuses.flatMap((o) => (o._tag === "Some" && o.value.status === 200 ? [o.value.body] : []))
        last = JSON.stringify(seen)
        const leaders = new Set(seen.map((b) => (b as { leader?: string }).leader))
        if (seen.length === this.members.length && leaders.size === 1) {
          const leader = [...leaders][0]
          const index = seen.findIndex((b) => (b as { header?: { member_id?: string } }).header?.member_id === leader)
          if (leader !== undefined && leader !== "0" && index >= 0) return this.members[index]!.id
        }
        yield* Effect.sleep(100)
      }
      return yield* new EtcdError({ message: `etcd: no agreed leader within ${timeoutMs} ms: ${last}` })
    })
  }
}
