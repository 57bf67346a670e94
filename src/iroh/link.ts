import { Effect } from "effect"
import { encodeFramesToArray, preamble } from "../message/framing.ts"
import { className, type PriorityClass } from "../message/priority.ts"
import type { NodeId } from "../message/types.ts"
import type { Link, LinkSession } from "../peer/link.ts"
import { ConnectFailed, StreamFailed } from "../transport/errors.ts"
import type { IrohEndpointAddr } from "./addresses.ts"
import type { IrohEndpointRaw } from "./endpoint.ts"
import { ALPN, ErrorCode, irohErrorMessage, STREAM_PRIORITY } from "./protocol.ts"

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
    const connection = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => endpoint.connect(addr, ALPN),
        catch: (cause) => new ConnectFailed({ peer, transport: "iroh", cause: irohErrorMessage(cause) })
      }).pipe(
        Effect.timeoutOrElse({
          duration: connectTimeoutMs,
          orElse: () => Effect.fail(new ConnectFailed({ peer, transport: "iroh", cause: `timed out after ${connectTimeoutMs} ms` }))
        })
      ),
      (c) => Effect.sync(() => c.close(ErrorCode.Normal, []))
    )
    const streams: Array<SendStream | undefined> = [undefined, undefined, undefined, undefined]
    const session: LinkSession = {
      kind: "iroh",
      write: (cls: PriorityClass, payloads: ReadonlyArray<Uint8Array>) =>
        Effect.tryPromise({
          try: async () => {
            let stream = streams[cls]
            if (stream === undefined) {
              stream = await connection.openUni()
              await stream.setPriority(STREAM_PRIORITY[cls]!)
              streams[cls] = stream
              await stream.writeAll(encodeFramesToArray(payloads, preamble(cls)))
            } else {
              await stream.writeAll(encodeFramesToArray(payloads))
            }
          },
          catch: (cause) => new StreamFailed({ peer, transport: "iroh", class: className(cls), cause: irohErrorMessage(cause) })
        }),
      closed: Effect.promise(() => connection.closed().catch((error: unknown) => irohErrorMessage(error))),
      rttMs: () => connection.rtt() ?? undefined
    }
    return session
  })
})
