/**
 * The Iroh endpoint ticket format, read without the Iroh binding: config decoding runs where
 * the binding is not loaded (`raft-transport/testing`, gRPC-only nodes), and a bad ticket must
 * be a `ConfigError` naming its field rather than a panic from the binding at start-up.
 *
 * A ticket is `"endpoint"` + unpadded base32 (either case) of the postcard encoding of
 * `Variant0 { endpoint_id: [u8; 32], addrs: Set<TransportAddr> }`, with
 * `TransportAddr = Relay(url: String) | Ip(SocketAddr)` and
 * `SocketAddr = V4([u8; 4], port: varint) | V6([u8; 16], port: varint)`.
 * test/unit/iroh-ticket.test.ts checks this reading against the binding's own tickets.
 */

const PREFIX = "endpoint"
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"

/** What a ticket says: the endpoint id (64 hex characters) and how many addresses it carries. */
export interface TicketContents {
  readonly endpointId: string
  readonly addresses: number
}

const base32Decode = (text: string): Uint8Array | string => {
  const out: Array<number> = []
  let value = 0
  let bits = 0
  for (const char of text.toLowerCase()) {
    const digit = ALPHABET.indexOf(char)
    if (digit === -1) return `${JSON.stringify(char)} is not a base32 character`
    value = ((value << 5) | digit) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((value >> bits) & 0xff)
    }
  }
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return "the base32 text has a truncated last character"
  return Uint8Array.from(out)
}

const P = 2n ** 255n - 19n
const modP = (n: bigint): bigint => ((n % P) + P) % P
const powP = (base: bigint, exp: bigint): bigint => {
  let result = 1n
  let b = modP(base)
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P
    b = (b * b) % P
  }
  return result
}
const D = modP(-121665n * powP(121666n, P - 2n))
const SQRT_M1 = powP(2n, (P - 1n) / 4n)

/**
 * Whether 32 bytes are a compressed Ed25519 point, as the binding requires of an endpoint id
 * (a public key): x² = (y² - 1) / (d·y² + 1) must have a square root (RFC 8032, 5.1.3).
 */
const isEd25519Point = (bytes: Uint8Array): boolean => {
  let y = 0n
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? bytes[i]! & 0x7f : bytes[i]!)
  const y2 = modP(y * y)
  const u = modP(y2 - 1n)
  const v = modP(D * y2 + 1n)
  const x = modP(u * powP(v, 3n) * powP(u * powP(v, 7n), (P - 5n) / 8n))
  const vx2 = modP(v * x * x)
  return vx2 === u || vx2 === modP(-u) || (u === 0n && x === 0n) || modP(vx2 * SQRT_M1 * SQRT_M1) === u
}

class Reader {
  pos = 0
  constructor(readonly bytes: Uint8Array) {}

  take(n: number): Uint8Array {
    if (this.pos + n > this.bytes.length) throw new RangeError("the ticket ends early")
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** A postcard varint (LEB128) of at most `maxBytes` bytes. */
  varint(maxBytes: number): number {
    let result = 0
    for (let i = 0; i < maxBytes; i++) {
      const byte = this.take(1)[0]!
      result += (byte & 0x7f) * 2 ** (7 * i)
      if ((byte & 0x80) === 0) return result
    }
    throw new RangeError("a length or port is too long")
  }
}

const readAddress = (reader: Reader): void => {
  const kind = reader.varint(5)
  if (kind === 0) {
    const url = reader.take(reader.varint(5))
    let text: string
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(url)
    } catch {
      throw new RangeError("a relay URL is not UTF-8")
    }
    if (!URL.canParse(text)) throw new RangeError(`the relay URL ${JSON.stringify(text)} is not a URL`)
    return
  }
  if (kind !== 1) throw new RangeError(`unknown address kind ${kind}`)
  const family = reader.varint(5)
  if (family !== 0 && family !== 1) throw new RangeError(`unknown IP family ${family}`)
  reader.take(family === 0 ? 4 : 16)
  if (reader.varint(3) > 0xffff) throw new RangeError("a port is above 65535")
}

/** The ticket's contents, or why it is not an endpoint ticket. */
export const parseEndpointTicket = (ticket: string): TicketContents | string => {
  if (!ticket.startsWith(PREFIX)) return `an endpoint ticket starts with "${PREFIX}"`
  const bytes = base32Decode(ticket.slice(PREFIX.length))
  if (typeof bytes === "string") return bytes
  const reader = new Reader(bytes)
  try {
    const variant = reader.varint(5)
    if (variant !== 0) return `unknown ticket version ${variant}`
    const id = reader.take(32)
    if (!isEd25519Point(id)) return "the endpoint id is not an Ed25519 public key"
    const addresses = reader.varint(5)
    for (let i = 0; i < addresses; i++) readAddress(reader)
    // Bytes after the addresses are ignored, as the binding's decoder ignores them.
    return { endpointId: Buffer.from(id).toString("hex"), addresses }
  } catch (error) {
    return error instanceof RangeError ? error.message : String(error)
  }
}
