import { Data } from "effect"

/** The `/metrics` HTTP server could not start: a malformed bind address, or `listen` failed. */
export class MetricsServerFailed extends Data.TaggedError("MetricsServerFailed")<{
  readonly address: string
  readonly reason: string
  readonly cause: unknown
}> {
  override get message() {
    return `metrics server on ${this.address} failed: ${this.reason}`
  }
}
