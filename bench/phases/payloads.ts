/**
 * Entry payloads of the compression benchmark, made deterministically (a seeded generator), so
 * every run and both processes see the same bytes. Each append entry is a 16-byte request id
 * and about 100 bytes of value, as a KV command would carry:
 * - `json`: a JSON record with a name, an email and numbers (compresses ~3x in 64 KiB batches);
 * - `base64`: base64 of random bytes (~1.3x: only the alphabet is redundant);
 * - `repeated`: one character repeated (compresses far more than anything real).
 * A pool of distinct entries is cycled: a 64 KiB batch never holds the same entry twice.
 */

export type PayloadKind = "json" | "base64" | "repeated"
export const payloadKinds: ReadonlyArray<PayloadKind> = ["json", "base64", "repeated"]

const POOL_SIZE = 4096
const REQUEST_ID_BYTES = 16

/** mulberry32: small, fast, and the same sequence everywhere. */
const generator = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const FIRST = ["Ann", "Bob", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Jorge", "Kai", "Lena", "Mia", "Noor"]
const LAST = ["Smith", "Jones", "Garcia", "Müller", "Kowalski", "Nguyen", "Rossi", "Tanaka", "Okafor", "Silva", "Novak"]
const CITY = ["Berlin", "Lagos", "Lima", "Osaka", "Porto", "Quebec", "Seoul", "Tartu", "Utrecht", "Wuhan"]
const DOMAIN = ["example.com", "mail.test", "corp.example", "post.invalid"]

const pick = <A>(random: () => number, items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!

const encoder = new TextEncoder()

const jsonRecord = (random: () => number, i: number): string => {
  const first = pick(random, FIRST)
  const last = pick(random, LAST)
  return JSON.stringify({
    id: 100_000 + i,
    name: `${first} ${last}`,
    email: `${first.toLowerCase()}.${last.toLowerCase()}${Math.floor(random() * 1000)}@${pick(random, DOMAIN)}`,
    age: 18 + Math.floor(random() * 70),
    city: pick(random, CITY),
    balance: Math.round(random() * 10_000_000) / 100
  })
}

const base64Random = (random: () => number): string => {
  const bytes = new Uint8Array(75)
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256)
  return Buffer.from(bytes).toString("base64")
}

const withRequestId = (random: () => number, value: Uint8Array): Uint8Array => {
  const out = new Uint8Array(REQUEST_ID_BYTES + value.length)
  for (let i = 0; i < REQUEST_ID_BYTES; i++) out[i] = Math.floor(random() * 256)
  out.set(value, REQUEST_ID_BYTES)
  return out
}

const pools = new Map<PayloadKind, ReadonlyArray<Uint8Array>>()

/** `POOL_SIZE` distinct entries of the kind. */
export const payloadPool = (kind: PayloadKind): ReadonlyArray<Uint8Array> => {
  const cached = pools.get(kind)
  if (cached !== undefined) return cached
  const random = generator(kind.length * 7919)
  const pool = Array.from({ length: POOL_SIZE }, (_, i) => {
    const value = kind === "json" ? jsonRecord(random, i) : kind === "base64" ? base64Random(random) : "x".repeat(100)
    return withRequestId(random, encoder.encode(value))
  })
  pools.set(kind, pool)
  return pool
}

/**
 * A key-value snapshot of about `bytes` bytes, as `KvStateMachine.snapshot()` writes it: the
 * JSON array of `[key, value]` pairs sorted by key, each value a JSON record.
 */
export const kvSnapshotJson = (bytes: number): Uint8Array => {
  const random = generator(42)
  const parts: Array<string> = []
  let size = 2
  for (let i = 0; size < bytes; i++) {
    const pair = JSON.stringify([`user/${String(i).padStart(8, "0")}`, jsonRecord(random, i)])
    parts.push(pair)
    size += pair.length + 1
  }
  return encoder.encode(`[${parts.join(",")}]`)
}
