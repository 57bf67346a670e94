import iroh from "@number0/iroh"
import { Effect } from "effect"
import { ALPN, irohCall, IrohFailure } from "../../src/iroh/protocol.ts"

const { Endpoint, presetMinimal, RelayMode } = iroh

/** A bare Iroh endpoint on 127.0.0.1 (relays off) that speaks our ALPN but none of our protocol. */
export const rawIrohEndpoint = Effect.acquireRelease(
  irohCall(() => {
    const b = Endpoint.builder()
    presetMinimal(b)
    b.relayMode(RelayMode.disabled())
    b.bindAddr("127.0.0.1:0")
    b.alpns([ALPN])
    return b.bind()
  }, IrohFailure.of),
  (e) => irohCall(() => e.close(), IrohFailure.of).pipe(Effect.orDie)
)
