import { MessageType, type RaftMessage } from "./types.ts"

/**
 * Priority classes, highest first. The numeric value is the wire value in the stream
 * preamble and the index into every per-class array in the transport.
 */
export const PriorityClass = {
  Election: 0,
  Heartbeat: 1,
  Append: 2,
  Snapshot: 3
} as const
export type PriorityClass = (typeof PriorityClass)[keyof typeof PriorityClass]

/** All classes in priority order (highest first). */
export const priorityClasses: ReadonlyArray<PriorityClass> = [0, 1, 2, 3]

/** Class names in priority order, as used in config keys, metric labels and events. */
export const classNames = ["election", "heartbeat", "append", "snapshot"] as const
export type ClassName = (typeof classNames)[number]

/** The name of a class (`PriorityClass.Append` -> `"append"`). */
export const className = (cls: PriorityClass): ClassName => classNames[cls]

const classOfType: ReadonlyArray<PriorityClass> = (() => {
  const table: Array<PriorityClass> = []
  for (let t = 0; t <= 13; t++) table.push(PriorityClass.Append)
  for (const t of [
    MessageType.RequestVote,
    MessageType.RequestVoteResponse,
    MessageType.RequestPreVote,
    MessageType.RequestPreVoteResponse,
    MessageType.TimeoutNow
  ]) table[t] = PriorityClass.Election
  table[MessageType.Heartbeat] = PriorityClass.Heartbeat
  table[MessageType.HeartbeatResponse] = PriorityClass.Heartbeat
  table[MessageType.Snapshot] = PriorityClass.Snapshot
  return table
})()

/** election > heartbeat > append > snapshot; unknown types ride with appends. */
export const classify = (message: RaftMessage): PriorityClass =>
  classOfType[message.msgType] ?? PriorityClass.Append

export const isPriorityClass = (n: number): n is PriorityClass => n === 0 || n === 1 || n === 2 || n === 3
