import { describe, expect, it } from "vitest"
import { ElectionActivity } from "../../src/domain/election-activity.ts"
import { snapshotPace } from "../../src/peer/snapshot-sender.ts"

describe("snapshot pace", () => {
  const options = (activity: ElectionActivity, cap = 2_000_000) => ({
    snapshotBytesPerSec: { iroh: 5_000_000 },
    snapshotElectionBytesPerSec: { iroh: cap },
    electionActivity: activity
  })

  it("outside an election: the configured pace, and compression may speed a chunk up 4x at most", () => {
    const pace = snapshotPace(options(new ElectionActivity(500)), "iroh")
    expect(pace(1000)).toEqual({ bytesPerSec: 5_000_000, maxSpeedup: 4 })
  })

  it("during an election: the election cap, and every byte before compression counts", () => {
    const activity = new ElectionActivity(500)
    const pace = snapshotPace(options(activity), "iroh")
    activity.noteAt(1000)
    expect(pace(1200)).toEqual({ bytesPerSec: 2_000_000, maxSpeedup: 1 })
    expect(pace(1600)).toEqual({ bytesPerSec: 5_000_000, maxSpeedup: 4 })
  })

  it("with no election cap, an election still takes away the compression speed-up", () => {
    const activity = new ElectionActivity(500)
    const pace = snapshotPace(options(activity, 0), "iroh")
    activity.noteAt(1000)
    expect(pace(1100)).toEqual({ bytesPerSec: 5_000_000, maxSpeedup: 1 })
  })
})
