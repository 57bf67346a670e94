import { describe, expect, it } from "@effect/vitest"
import { describeCause } from "../../src/domain/errors.ts"

describe("describeCause", () => {
  it("always gives a string, whatever was thrown", () => {
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    expect(describeCause(new Error("boom"))).toBe("boom")
    expect(describeCause("plain")).toBe("plain")
    expect(describeCause({ code: "ECONNRESET" })).toBe("{\"code\":\"ECONNRESET\"}")
    expect(describeCause(undefined)).toBe("undefined")
    expect(describeCause(cyclic)).toBe("[object Object]")
  })
})
