/**
 * The binding-free ticket reader (config decoding) agrees with the Iroh binding: on tickets
 * the binding makes, and on every mutation of them (a changed, dropped or added character),
 * it accepts exactly what the binding accepts and reads the same endpoint id.
 */
import iroh from "@number0/iroh"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseConfigToml } from "../../src/config/load.ts"
import { parseEndpointTicket } from "../../src/config/iroh-ticket.ts"

const { EndpointAddr, EndpointId, EndpointTicket, SecretKey } = iroh

const bindingRead = (ticket: string): string | undefined => {
  try {
    return EndpointTicket.fromString(ticket).endpointAddr().id().toString()
  } catch {
    return undefined
  }
}
const ourRead = (ticket: string): string | undefined => {
  const parsed = parseEndpointTicket(ticket)
  return typeof parsed === "string" ? undefined : parsed.endpointId
}

const ticketOf = (relay: string | null, addresses: Array<string>) => {
  const id = SecretKey.generate().public().toString()
  return { id, ticket: EndpointTicket.fromAddr(new EndpointAddr(EndpointId.fromString(id), relay, addresses)).toString() }
}

const samples = [
  ticketOf(null, []),
  ticketOf(null, ["127.0.0.1:4001"]),
  ticketOf(null, ["127.0.0.1:4001", "[::1]:65535", "10.1.2.3:1"]),
  ticketOf("https://relay.example.com/", ["192.168.0.7:9000"])
]

/** A small deterministic generator, so a failure names a reproducible case. */
const lcg = (seed: number) => () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31

describe("Iroh ticket reader", () => {
  it("reads the binding's tickets: the same endpoint id, every address", () => {
    for (const { id, ticket } of samples) {
      expect(bindingRead(ticket)).toBe(id)
      expect(ourRead(ticket)).toBe(id)
    }
    expect(parseEndpointTicket(samples[2]!.ticket)).toMatchObject({ addresses: 3 })
  })

  it("accepts exactly what the binding accepts under single-character mutations", () => {
    const random = lcg(7)
    const alphabet = "abcdefghijklmnopqrstuvwxyz234567A!"
    let rejected = 0
    for (const { ticket } of samples) {
      for (let i = 0; i < 150; i++) {
        const at = Math.floor(random() * ticket.length)
        const char = alphabet[Math.floor(random() * alphabet.length)]!
        const kind = i % 3
        const mutated = kind === 0
          ? ticket.slice(0, at) + char + ticket.slice(at + 1)
          : kind === 1
          ? ticket.slice(0, at) + ticket.slice(at + 1)
          : ticket.slice(0, at) + char + ticket.slice(at)
        const binding = bindingRead(mutated)
        expect([mutated, ourRead(mutated)]).toEqual([mutated, binding])
        if (binding === undefined) rejected++
      }
    }
    // The mutations exercise rejection, not just acceptance.
    expect(rejected).toBeGreaterThan(100)
  })

  it.effect("a bad iroh_ticket is a ConfigError naming the field, at decode time", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseConfigToml(
        `[transport]\nnode_id = 1\n[[transport.peers]]\nid = 2\niroh_ticket = "not-a-ticket"\n`
      ))
      expect(error).toMatchObject({ _tag: "ConfigError", path: "transport.peers[0].iroh_ticket" })
      expect(error.message).toContain("Expected an Iroh endpoint ticket")
      const truncated = samples[1]!.ticket.slice(0, -3)
      const cut = yield* Effect.flip(parseConfigToml(
        `[transport]\nnode_id = 1\n[[transport.peers]]\nid = 2\niroh_ticket = "${truncated}"\n`
      ))
      expect(cut.path).toBe("transport.peers[0].iroh_ticket")
    }))
})
