import { Data } from "effect"

/** A frame header announced more bytes than `max_frame_bytes` allows. */
export class FrameTooLarge extends Data.TaggedError("FrameTooLarge")<{
  readonly length: number
  readonly max: number
}> {
  override get message() {
    return `frame of ${this.length} bytes exceeds the maximum of ${this.max}`
  }
}

/** A stream did not start with the `RT`, version, class preamble. */
export class BadPreamble extends Data.TaggedError("BadPreamble")<{
  readonly bytes: ReadonlyArray<number>
  readonly reason: string
}> {
  override get message() {
    return `bad stream preamble [${this.bytes.join(",")}]: ${this.reason}`
  }
}

/** A frame's payload is not a valid `raft.Message`. */
export class DecodeFailed extends Data.TaggedError("DecodeFailed")<{
  readonly cause: unknown
}> {
  override get message() {
    return `undecodable message: ${String(this.cause)}`
  }
}

/** An input would decode into more objects than the limits allow (see `decode-limits.ts`). */
export class DecodeLimitExceeded extends Data.TaggedError("DecodeLimitExceeded")<{
  /** What is over: `max_batch_messages`, `max_message_entries` or `max_batch_entries`. */
  readonly limit: "max_batch_messages" | "max_message_entries" | "max_batch_entries"
  readonly max: number
}> {
  override get message() {
    return `input exceeds ${this.limit} (${this.max})`
  }
}
