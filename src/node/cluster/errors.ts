import { Data } from "effect"

export class ClusterError extends Data.TaggedError("ClusterError")<{
  readonly message: string
  readonly cause?: unknown
  /** A node exited because one of its ports was taken (see `LocalCluster.startAll`). */
  readonly addressInUse?: boolean
}> {}

/** The node did not answer: connection refused or reset, or the request timed out. */
export class NodeUnreachable extends Data.TaggedError("NodeUnreachable")<{
  readonly node: number
  readonly reason: string
}> {
  override get message() {
    return `node ${this.node} unreachable: ${this.reason}`
  }
}
