import { Effect } from "effect"
import { encodeFramesToArray, preamble } from "../message/framing.ts"
import { className, type PriorityClass } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import type { Link, LinkSession } from "../peer/link.ts"
import { ConnectFailed, StreamFailed } from "../transport/errors.ts"
import type { IrohEndpointAddr } from "./addresses.ts"
import type { IrohEndpointRaw } from "./endpoint.ts"
import { ALPN, ErrorCode, irohCall, irohErrorMessage, STREAM_PRIORITY } from "./protocol.ts"

type SendStream = Awaited<ReturnType<Awaited<ReturnType<IrohEndpointRaw["connect"]>>["openUni"]>>

/**
 * The outbound Iroh link to one peer: a QUIC connection with one uni stream per class,
 * opened lazily on the first write of that class, given the class's priority and the
 * preamble, and kept for the connection's life.
 */
export const makeIrohLink = (
  endpoint: IrohEndpointRaw,
  peer: NodeId,
  address: () => IrohEndpointAddr | undefined,
  connectTimeoutMs: number
): Link => ({
  kind: "iroh",
  connect: Effect.gen(function*() {
    const addr = address()
    if (addr === undefined) {
      return yield* new ConnectFailed({ peer, transport: "iroh", cause: "no iroh endpoint id or ticket for this peer" })
    }
    // Not acquireRelease: its acquire step cannot be interrupted, and a peer removed or a node
    // shut down while a dial hangs must not wait for the dial's timeout.
    const connection = yield* irohCall(
      () => endpoint.connect(addr, ALPN),
      (cause) => new ConnectFailed({ peer, transport: "iroh", cause })
    ).pipe(
      Effect.timeoutOrElse({
        duration: connectTimeoutMs,
        orElse: () => Effect.fail(new ConnectFailed({ peer, transport: "iroh", cause: `timed out after ${connectTimeoutMs} ms` }))
      })
    )
    yield* Effect.addFinalizer(() => Effect.sync(() => connection.close(ErrorCode.Normal, [])))
    const streams: Array<SendStream | undefined> = [undefined, undefined, undefined, undefined]
    const session: LinkSession = {
      kind: "iroh",
      write: (cls: PriorityClass, payloads: ReadonlyArray<Uint8Array>) =>
        irohCall(async () => {
          let stream = streams[cls]
          if (stream === undefined) {
            stream = await connection.openUni()
            await stream.setPriority(STREAM_PRIORITY[cls]!)
            streams[cls] = stream
            await stream.writeAll(encodeFramesToArray(payloads, preamble(cls)))
          } else {
            await stream.writeAll(encodeFramesToArray(payloads))
          }
        }, (cause) => new StreamFailed({ peer, transport: "iroh", class: className(cls), cause })),
      // `_signal` keeps the wait interruptible (see irohCall).
      closed: Effect.promise((_signal) => connection.closed().catch((error: unknown) => irohErrorMessage(error))),
      rttMs: () => connection.rtt() ?? undefined
    }
    return session
  })
})
