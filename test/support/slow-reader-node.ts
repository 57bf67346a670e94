/**
 * A transport node whose application reads slowly, for tests that kill a receiver with a
 * backlog. Arguments: the `[transport]` table as JSON, the most messages taken per read, and
 * the pause after each read in ms. Prints `{"ready": LocalAddress}` once listening, then per
 * read `{"got": {"a": [append indexes], "h": [heartbeat commits]}}`, written synchronously
 * (stdout is a pipe) before the pause, so what a SIGKILL finds printed was taken.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { decodeTransportConfig } from "../../src/config/load.ts"
import { MessageType } from "../../src/message/types.ts"
import { makeRaftTransport } from "../../src/transport/service.ts"

const print = (value: unknown) => Effect.sync(() => process.stdout.write(`${JSON.stringify(value)}\n`))

const main = Effect.gen(function*() {
  const config = yield* decodeTransportConfig(JSON.parse(process.argv[2] ?? "{}"))
  const perRead = Number(process.argv[3] ?? "100")
  const pauseMs = Number(process.argv[4] ?? "100")
  const transport = yield* makeRaftTransport(config)
  yield* print({ ready: transport.localAddress() })
  while (true) {
    const batch = yield* transport.receiveBatch(perRead)
    const a: Array<number> = []
    const h: Array<number> = []
    for (const m of batch) {
      if (m.msgType === MessageType.Heartbeat) h.push(m.commit ?? 0)
      else a.push(m.index ?? 0)
    }
    yield* print({ got: { a, h } })
    yield* Effect.sleep(pauseMs)
  }
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
