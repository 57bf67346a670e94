import { describe, expect, it } from "vitest"
import { DarkWatch, darkAfterFor } from "../../src/peer/dark-watch.ts"

const counts = (txDatagrams: number, rxDatagrams: number) => ({ txDatagrams, rxDatagrams })

describe("dark watch", () => {
  it("a send followed by datagrams out and nothing back for darkAfterMs is a dark path", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    expect(watch.sample(0, counts(10, 10))._tag).toBe("Alive")
    watch.noteSent(5)
    expect(watch.sample(25, counts(11, 10))._tag).toBe("Alive")
    expect(watch.sample(200, counts(13, 10))._tag).toBe("Alive")
    expect(watch.sample(205, counts(13, 10))).toEqual({ _tag: "Dark", silentMs: 200 })
  })

  it("anything received answers every send before it", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    watch.sample(0, counts(10, 10))
    watch.noteSent(5)
    expect(watch.sample(150, counts(12, 11))._tag).toBe("Alive")
    // Nothing sent since: silence is not darkness.
    expect(watch.sample(1000, counts(12, 11))._tag).toBe("Alive")
    watch.noteSent(1000)
    expect(watch.sample(1199, counts(13, 11))._tag).toBe("Alive")
    expect(watch.sample(1200, counts(13, 11))._tag).toBe("Dark")
  })

  it("an acknowledgement that came another way answers the wait; a later send waits afresh", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    watch.sample(0, counts(10, 10))
    watch.noteSent(5)
    watch.answered(8)
    expect(watch.waiting).toBe(false)
    expect(watch.heardAt).toBe(8)
    expect(watch.sample(300, counts(12, 10))._tag).toBe("Alive")
    expect(watch.noteSent(300)).toBe(true)
    expect(watch.sample(500, counts(13, 10))._tag).toBe("Dark")
  })

  it("a wait is first sampled once QUIC's acknowledgement can be back, and never past the threshold", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    expect(watch.firstSampleAfterMs()).toBe(30) // the ack delay and 5 ms to spare
    watch.rebase({ ...counts(10, 10), rttMs: 150 })
    expect(watch.firstSampleAfterMs()).toBe(180) // and a round trip
    expect(new DarkWatch({ darkAfterMs: 20 }, 0).firstSampleAfterMs()).toBe(20)
    // Due from the send that started the wait; nothing is due while nothing waits.
    expect(watch.firstSampleAt()).toBeUndefined()
    watch.noteSent(1000)
    expect(watch.firstSampleAt()).toBe(1180)
    watch.noteSent(1050) // inside the wait: no new one
    expect(watch.firstSampleAt()).toBe(1180)
    watch.answered(1060)
    expect(watch.firstSampleAt()).toBeUndefined()
  })

  it("a wait of late-answered sends is first sampled once their answer is overdue, sooner after a send that is not late", () => {
    const watch = new DarkWatch({ darkAfterMs: 200, lateAnswerMs: 150 }, 0)
    watch.rebase({ ...counts(10, 10), rttMs: 1 })
    expect(watch.noteSent(1000, true)).toBe(true)
    expect(watch.waitingLate).toBe(true)
    expect(watch.firstSampleAt()).toBe(1156) // the late answer's wait, 5 ms to spare and a round trip
    watch.noteSent(1010, true) // another late send: the wait stays late
    expect(watch.firstSampleAt()).toBe(1156)
    watch.noteSent(1020) // a send that is not late: sampled as any wait, from its start
    expect(watch.waitingLate).toBe(false)
    expect(watch.firstSampleAt()).toBe(1031)
    watch.answered(1030)
    expect(watch.waitingLate).toBe(false)
    // Never past the threshold; and without a late answer's wait, a late send waits as any other.
    const slow = new DarkWatch({ darkAfterMs: 100, lateAnswerMs: 150 }, 0)
    slow.noteSent(0, true)
    expect(slow.firstSampleAt()).toBe(100)
    const plain = new DarkWatch({ darkAfterMs: 200 }, 0)
    plain.noteSent(0, true)
    expect(plain.waitingLate).toBe(false)
    expect(plain.firstSampleAt()).toBe(30)
  })

  it("a send that could not go out (flow control) is not yet waiting for an answer", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    watch.sample(0, counts(10, 10))
    watch.noteSent(5)
    expect(watch.sample(500, counts(10, 10))._tag).toBe("Alive")
    expect(watch.sample(525, counts(11, 10))._tag).toBe("Alive")
    expect(watch.sample(699, counts(11, 10))._tag).toBe("Alive")
    expect(watch.sample(700, counts(11, 10))._tag).toBe("Dark")
  })

  it("a slow path gets two round trips and both ack delays", () => {
    expect(darkAfterFor(200, undefined)).toBe(200)
    expect(darkAfterFor(200, 40)).toBe(200)
    expect(darkAfterFor(200, 150)).toBe(350)
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    watch.sample(0, counts(10, 10))
    watch.noteSent(0)
    expect(watch.sample(300, { ...counts(11, 10), rttMs: 150 })._tag).toBe("Alive")
    expect(watch.sample(350, { ...counts(11, 10), rttMs: 150 })._tag).toBe("Dark")
  })

  it("reads nothing between waits: a baseline before the send that starts one, samples until it is answered", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    expect(watch.noteSent(0)).toBe(true)
    expect(watch.noteSent(3)).toBe(false)
    watch.rebase(counts(10, 10))
    expect(watch.sample(25, counts(11, 12))._tag).toBe("Alive")
    expect(watch.waiting).toBe(false)
    expect(watch.heardAt).toBe(25)
    // Idle for a second; what arrived meanwhile came before the next send, so it answers nothing.
    expect(watch.noteSent(1000)).toBe(true)
    watch.rebase(counts(14, 20))
    expect(watch.heardAt).toBe(25)
    expect(watch.sample(1025, counts(15, 20))._tag).toBe("Alive")
    expect(watch.waiting).toBe(true)
    expect(watch.sample(1200, counts(16, 20))).toEqual({ _tag: "Dark", silentMs: 200 })
  })

  it("after the baseline, a send held back by flow control waits for datagrams to leave", () => {
    const watch = new DarkWatch({ darkAfterMs: 200 }, 0)
    watch.noteSent(0)
    watch.rebase(counts(10, 10))
    // Flow control held the send back: the wait starts when datagrams leave.
    expect(watch.sample(300, counts(10, 10))._tag).toBe("Alive")
    expect(watch.sample(325, counts(11, 10))._tag).toBe("Alive")
    expect(watch.sample(500, counts(11, 10))).toEqual({ _tag: "Dark", silentMs: 200 })
  })
})
