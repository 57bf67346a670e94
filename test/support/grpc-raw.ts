import * as grpc from "@grpc/grpc-js"
import { Effect } from "effect"
import { type Ack, decodeAck, MetadataKey, passThrough, STREAM_PATH } from "../../src/grpc/service-definition.ts"
import type { PriorityClass } from "../../src/message/priority.ts"
import type { NodeId } from "../../src/message/types.ts"

export type RawOutcome = { readonly _tag: "Ack"; readonly ack: Ack } | { readonly _tag: "Error"; readonly code: grpc.status }

/** Call metadata as a well-behaved peer sends it (`x-raft-*`), plus any `extra` keys. */
export const streamMetadata = (
  cluster: string,
  from: NodeId,
  to: NodeId,
  cls: PriorityClass,
  extra: Record<string, string> = {}
): Record<string, string> => ({
  [MetadataKey.Cluster]: cluster,
  [MetadataKey.From]: String(from),
  [MetadataKey.To]: String(to),
  [MetadataKey.Class]: String(cls),
  ...extra
})

/**
 * One raw `Stream` call, from a client of its own, with hand-made metadata: writes `batches`
 * (encoded `MessageBatch`es, or anything else), half-closes, and gives the server's answer.
 */
export const rawStream = (address: string, metadata: Record<string, string>, batches: ReadonlyArray<Buffer>) =>
  Effect.callback<RawOutcome>((resume) => {
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 })
    const md = new grpc.Metadata()
    for (const [k, v] of Object.entries(metadata)) md.set(k, v)
    const call = client.makeClientStreamRequest<Buffer, Ack>(STREAM_PATH, passThrough, decodeAck, md, {}, (error, ack) => {
      client.close()
      resume(Effect.succeed(error !== null ? { _tag: "Error", code: error.code } : { _tag: "Ack", ack: ack ?? { received: -1 } }))
    })
    // The outcome arrives through the callback, which grpc-js always calls; a write that races
    // the server's refusal may also emit 'error', and a writable without a listener would throw.
    call.on("error", () => {})
    for (const b of batches) call.write(b)
    call.end()
  }).pipe(Effect.timeout("10 seconds"))
