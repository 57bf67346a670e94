import { describe, expect, it } from "@effect/vitest"
import { encodeMessageBatch } from "../../src/grpc/batch-encoding.ts"
import { SnapshotBudget } from "../../src/inbound/snapshot-budget.ts"
import { encodeMessage } from "../../src/message/codec.ts"
import { countEntries, scanBatch } from "../../src/message/decode-limits.ts"
import { SnapshotAssembler } from "../../src/message/snapshot-chunks.ts"
import { MessageType, type RaftMessage } from "../../src/message/types.ts"

const limits = { maxBatchMessages: 4, maxMessageEntries: 3, maxBatchEntries: 5 }
const append = (entries: number): RaftMessage => ({
  msgType: MessageType.Append,
  from: 1,
  to: 2,
  entries: Array.from({ length: entries }, (_, i) => ({ term: 1, index: i + 1, data: Uint8Array.of(i) }))
})

describe("decode caps", () => {
  it("counts entries without decoding, and stops past the cap", () => {
    const bytes = encodeMessage(append(7))
    expect(countEntries(bytes, 0, bytes.length, 100)).toBe(7)
    expect(countEntries(bytes, 0, bytes.length, 3)).toBe(4)
  })

  it("scans a batch into message spans, refusing each cap by name", () => {
    const ok = encodeMessageBatch([encodeMessage(append(2)), encodeMessage(append(3))])
    expect(scanBatch(ok, limits)).toHaveLength(4)
    const many = encodeMessageBatch(Array.from({ length: 5 }, () => encodeMessage(append(0))))
    expect(scanBatch(many, limits)).toMatchObject({ _tag: "DecodeLimitExceeded", limit: "max_batch_messages" })
    const fat = encodeMessageBatch([encodeMessage(append(4))])
    expect(scanBatch(fat, limits)).toMatchObject({ _tag: "DecodeLimitExceeded", limit: "max_message_entries" })
    const wide = encodeMessageBatch([encodeMessage(append(3)), encodeMessage(append(3))])
    expect(scanBatch(wide, limits)).toMatchObject({ _tag: "DecodeLimitExceeded", limit: "max_batch_entries" })
    expect(scanBatch(Uint8Array.of(0x0a, 0x05, 1), limits)).toMatchObject({ _tag: "DecodeFailed" })
  })
})

describe("snapshot budget", () => {
  const first = (from: number, size: number, total: number): RaftMessage => ({
    msgType: MessageType.Snapshot,
    from,
    to: 2,
    snapshot: { data: new Uint8Array(size), offset: 0, totalSize: total, done: size === total, transferId: 1 }
  })

  it("reserves what arrives, not what is announced; one transfer per peer; stalled ones evicted", () => {
    let now = 0
    const budget = new SnapshotBudget(200_000, 1000, () => now)
    const a1 = new SnapshotAssembler(1 << 30, 7, budget, () => now)
    const a2 = new SnapshotAssembler(1 << 30, 7, budget, () => now)
    expect(a1.push(first(7, 1, 1 << 30))._tag).toBe("Pending")
    expect(budget.usedBytes).toBe(64 * 1024)
    // The same peer starts another on another stream: the first is dropped and its memory freed.
    expect(a2.push(first(7, 1, 1 << 30))._tag).toBe("Pending")
    expect(a1.inProgress).toBe(false)
    expect(budget.usedBytes).toBe(64 * 1024)
    expect(budget.takeAbandoned().map((e) => e.reason)).toEqual(["snapshot_replaced"])
    // Another peer over the budget: refused while the first is fresh, admitted once it stalled.
    const b = new SnapshotAssembler(1 << 30, 8, budget, () => now)
    expect(b.push(first(8, 150_000, 1 << 20))._tag).toBe("OverBudget")
    now = 1000
    expect(b.push(first(8, 150_000, 1 << 20))._tag).toBe("Pending")
    expect(a2.inProgress).toBe(false)
    expect(budget.takeAbandoned().map((e) => [e.peer, e.reason])).toEqual([[7, "snapshot_stalled"]])
    expect(budget.usedBytes).toBe(150_000)
    b.abort()
    expect(budget.usedBytes).toBe(0)
  })
})
