/**
 * A transport node in its own process, for tests that kill and restart peers. Argument: the
 * `[transport]` table as JSON. Prints `{"ready": LocalAddress}` once listening, then one
 * `{"received": {from, type, index, commit}}` line per inbound message. Stops on SIGTERM.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect } from "effect"
import { decodeTransportConfig } from "../../src/config/load.ts"
import { makeRaftTransport } from "../../src/transport/service.ts"

const print = (value: unknown) => Effect.sync(() => process.stdout.write(`${JSON.stringify(value)}\n`))

const main = Effect.gen(function*() {
  const config = yield* decodeTransportConfig(JSON.parse(process.argv[2] ?? "{}"))
  const transport = yield* makeRaftTransport(config)
  yield* print({ ready: transport.localAddress() })
  while (true) {
    const batch = yield* transport.receiveBatch(1000)
    for (const m of batch) {
      yield* print({ received: { from: m.from, type: m.msgType, index: m.index ?? 0, commit: m.commit ?? 0 } })
    }
  }
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
