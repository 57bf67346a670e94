/**
 * Entry point of a benchmark peer process: `tsx bench/peer-process.ts <role> [args...]`,
 * forked by the orchestrator with an IPC channel. Runs the role as an Effect program; answers
 * probes itself; exits when told to shut down, on SIGTERM (both close the role's scope: a
 * graceful shutdown), when the orchestrator goes away, or when the role fails (after reporting
 * the failure).
 */
import { Cause, Effect, Exit, type LogLevel, References } from "effect"
import { failoverGrpcRole, failoverIrohRole, failoverSenderRole } from "./phases/failover.ts"
import { candidateRole, voterRole } from "./phases/vote-latency.ts"
import { snapshotReceiverRole, snapshotSenderRole } from "./phases/compression.ts"
import { compressedCeilingReceiverRole, compressedCeilingSenderRole } from "./phases/compressed-ceiling.ts"
import { type Msg, type ParentLink, type Role, TypedMailbox } from "./harness/ipc.ts"
import { Probe, type Counters } from "./harness/probe.ts"
import { rawReceiverRole, rawSenderRole } from "./phases/raw-ceiling.ts"
import { throughputReceiverRole, throughputSenderRole } from "./phases/transport-throughput.ts"
import { WindowProfiler } from "./harness/window-profiler.ts"

const roles: Record<string, Role> = {
  "raw-sender": rawSenderRole,
  "raw-receiver": rawReceiverRole,
  "compressed-ceiling-sender": compressedCeilingSenderRole,
  "compressed-ceiling-receiver": compressedCeilingReceiverRole,
  "transport-sender": throughputSenderRole,
  "transport-receiver": throughputReceiverRole,
  "vote-candidate": candidateRole,
  "vote-voter": voterRole,
  "snapshot-sender": snapshotSenderRole,
  "snapshot-receiver": snapshotReceiverRole,
  "failover-sender": failoverSenderRole,
  "failover-iroh": failoverIrohRole,
  "failover-grpc": failoverGrpcRole
}

const [roleName = "", ...args] = process.argv.slice(2)
const role = roles[roleName]
const sendToParent = (message: Msg): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })

if (role === undefined || process.send === undefined) {
  console.error(`usage: forked by bench/run.ts with a role, one of: ${Object.keys(roles).join(", ")}`)
  process.exit(2)
}

/** `BENCH_LOG_LEVEL=Debug` (with `BENCH_VERBOSE=1`) shows the transport's own logs. */
const logLevel = ((): LogLevel.LogLevel => {
  const wanted = process.env["BENCH_LOG_LEVEL"]
  const levels: ReadonlyArray<LogLevel.LogLevel> = ["All", "Trace", "Debug", "Info", "Warn", "Error", "Fatal", "None"]
  return levels.find((l) => l === wanted) ?? "Warn"
})()

let counters: () => Counters = () => ({})
const probe = new Probe(() => counters())
const profiler = new WindowProfiler(process.env["BENCH_CPU_PROF"], process.env["BENCH_HEAP_PROF"], roleName)
const mailbox = new TypedMailbox()
const parent: ParentLink = {
  args,
  send: (message) => Effect.promise(() => sendToParent(message)),
  next: (type) => mailbox.take(type),
  setCounters: (read) => {
    counters = read
  }
}

const fiber = Effect.runFork(
  role(parent).pipe(
    Effect.andThen(Effect.never),
    Effect.scoped,
    Effect.provideService(References.MinimumLogLevel, logLevel)
  )
)

const stop = () => {
  // A scope that cannot close (a hung endpoint close) must not keep the process alive.
  setTimeout(() => process.exit(0), 2_000).unref()
  fiber.interruptUnsafe()
}

process.on("message", (m: unknown) => {
  const message = m as Msg
  switch (message.type) {
    case "probe-start":
      profiler.start()
      void sendToParent({ type: "probe-start", mark: probe.start() } as Msg)
      break
    case "probe-mark":
      void sendToParent({ type: "probe-mark", mark: probe.mark() } as Msg)
      break
    case "probe-stop":
      void sendToParent({ type: "probe-stop", window: probe.stop() } as Msg)
      profiler.stop()
      break
    case "shutdown":
      stop()
      break
    default:
      mailbox.push(message)
  }
})
// Without a handler Node exits on SIGTERM at once, scope unclosed (as SIGKILL would).
process.once("SIGTERM", stop)
process.on("disconnect", () => {
  mailbox.close(new Error("orchestrator disconnected"))
  stop()
})

fiber.addObserver((exit) => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) {
    process.exit(0)
  }
  const message = Cause.pretty(exit.cause)
  console.error(`role ${roleName} failed:\n${message}`)
  void sendToParent({ type: "error", message } as Msg).finally(() => process.exit(1))
})
