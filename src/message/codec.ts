import protobuf from "protobufjs"
import { fileURLToPath } from "node:url"
import type { RaftMessage } from "./types.ts"
import { installFastUint64 } from "./varint64.ts"

// Without `Long`, protobufjs reads uint64 as plain numbers: one allocation less per field and
// no conversion for callers. Measured in bench/codec.ts.
protobuf.util.Long = undefined as never
protobuf.configure()
installFastUint64()

export const protoPath: string = fileURLToPath(new URL("../../proto/raft.proto", import.meta.url))

/**
 * Reflection, not static generation: protobufjs compiles per-type encoders and decoders at
 * load time with the same generated code that `pbjs -t static` would write, so the speed is
 * the same (bench/codec.ts) without a generated file to keep in sync with the .proto.
 */
export const protoRoot: protobuf.Root = protobuf.loadSync(protoPath)

// protobufjs leaves an absent sub-message (`snapshot`, `metadata`, `conf_state`) as the
// constructor prototype's default, `null`, while `RaftMessage` and every consumer treat absence
// as `undefined` (`s === undefined`, `?.`, spreads). A peer that omits `snapshot` would then
// crash the snapshot reassembler with a TypeError (on gRPC, an unhandled rejection that ends
// the process). Making the prototype default `undefined` fixes decoding at the source, at no
// cost per message; encoders test `!= null`, so they are unaffected.
const raftNamespace = protoRoot.lookup("raft")
for (const type of raftNamespace instanceof protobuf.Namespace ? raftNamespace.nestedArray : []) {
  if (!(type instanceof protobuf.Type)) continue
  const prototype = type.ctor.prototype as Record<string, unknown>
  for (const field of type.fieldsArray) {
    if (!field.repeated && !field.map && field.resolve().resolvedType instanceof protobuf.Type) prototype[field.name] = undefined
  }
}

const MessageCodec = protoRoot.lookupType("raft.Message")
const BatchCodec = protoRoot.lookupType("raft.MessageBatch")

/** Encodes one message; the caller owns the returned bytes. */
export const encodeMessage = (message: RaftMessage): Uint8Array => MessageCodec.encode(message as never).finish()

/** Decodes one message; throws on malformed input (callers turn that into `DecodeFailed`). */
export const decodeMessage = (bytes: Uint8Array): RaftMessage => MessageCodec.decode(bytes) as unknown as RaftMessage

/**
 * Decodes the frames at `spans` (`[start, end, ...]` in `bytes`, as `FrameDecoder.pushSpans`
 * gives them) into `out`, all through one reader whose bounds are moved frame by frame: no
 * view and no reader per message. Each frame is bounded by its own end, exactly as if it were
 * decoded alone. Returns the first frame's failure (what decoded before it is in `out`).
 */
export const decodeMessagesAt = (
  bytes: Uint8Array,
  spans: ReadonlyArray<number>,
  out: Array<RaftMessage>
): { readonly cause: unknown } | undefined => {
  if (spans.length === 0) return undefined
  const reader = protobuf.Reader.create(bytes)
  for (let i = 0; i < spans.length; i += 2) {
    reader.pos = spans[i]!
    reader.len = spans[i + 1]!
    try {
      out.push(MessageCodec.decode(reader) as unknown as RaftMessage)
    } catch (cause) {
      return { cause }
    }
  }
  return undefined
}

export const encodeBatch = (messages: ReadonlyArray<RaftMessage>): Uint8Array =>
  BatchCodec.encode({ messages } as never).finish()

export const decodeBatch = (bytes: Uint8Array): ReadonlyArray<RaftMessage> =>
  (BatchCodec.decode(bytes) as unknown as { messages: ReadonlyArray<RaftMessage> }).messages

