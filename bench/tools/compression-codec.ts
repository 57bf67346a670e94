/**
 * In-process costs and ratios of compressing our writes: batches of `Append` frames of each
 * payload kind (`bench/phases/payloads.ts`) and chunks of a KV JSON snapshot, with zstd at
 * levels 1 and 3 (what `[transport.compression]` uses), and gzip and deflate (what grpc-js
 * offers per call). Fastest of `rounds` passes, so the figures say what the code costs, not
 * how busy the machine was.
 *
 *   npx tsx bench/tools/compression-codec.ts [rounds=7]
 */
import { constants, deflateSync, gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib"
import { encodeMessage } from "../../src/message/codec.ts"
import { encodeFrames } from "../../src/message/framing.ts"
import { MessageType } from "../../src/message/types.ts"
import { kvSnapshotJson, payloadKinds, payloadPool } from "../phases/payloads.ts"

const rounds = Number(process.argv[2] ?? 7)

const fastest = (f: () => void): number => {
  let best = Number.POSITIVE_INFINITY
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    f()
    best = Math.min(best, performance.now() - t0)
  }
  return best
}

const zstd = (level: number, chunkSize?: number, longDistance = false) => (b: Uint8Array) =>
  zstdCompressSync(b, {
    params: { [constants.ZSTD_c_compressionLevel]: level, ...(longDistance ? { [constants.ZSTD_c_enableLongDistanceMatching]: 1 } : {}) },
    ...(chunkSize === undefined ? {} : { chunkSize })
  })

/** Batches of `perBatch` appends (one entry each) of a payload kind, framed as one write. */
const appendBatches = (kind: (typeof payloadKinds)[number], perBatch: number): Array<Uint8Array> => {
  const payloads = payloadPool(kind).map((data, i) =>
    encodeMessage({
      msgType: MessageType.Append,
      from: 1,
      to: 2,
      term: 3,
      logTerm: 3,
      index: 1e6 + i,
      commit: 1e6 + i,
      entries: [{ term: 3, index: 1e6 + i + 1, data }]
    })
  )
  const out: Array<Uint8Array> = []
  for (let o = 0; o + perBatch <= payloads.length; o += perBatch) out.push(encodeFrames(payloads.slice(o, o + perBatch)))
  return out
}

const row = (what: string, inputs: ReadonlyArray<Uint8Array>, compress: (b: Uint8Array) => Uint8Array, inflate: boolean) => {
  const bytes = inputs.reduce((n, b) => n + b.length, 0)
  const compressed = inputs.map(compress)
  const out = compressed.reduce((n, b) => n + b.length, 0)
  const c = fastest(() => {
    for (const b of inputs) compress(b)
  })
  const d = inflate
    ? fastest(() => {
      for (let i = 0; i < compressed.length; i++) {
        zstdDecompressSync(compressed[i]!, { maxOutputLength: Math.max(1, inputs[i]!.length) })
      }
    })
    : Number.NaN
  const ns = (ms: number) => ((ms * 1e6) / bytes).toFixed(1)
  console.log(
    `| ${what} | ${(bytes / out).toFixed(2)}x | ${ns(c)} | ${((c * 1e3) / inputs.length).toFixed(1)} | ${inflate ? ns(d) : "-"} |`
  )
}

console.log("| input | ratio | compress ns/B | µs per call | decompress ns/B |")
console.log("|---|---|---|---|---|")
for (const kind of payloadKinds) {
  for (const per of [100, 400]) {
    const batches = appendBatches(kind, per)
    const kib = (batches[0]!.length / 1024).toFixed(0)
    row(`${kind} appends, ${per} per write (${kib} KiB), zstd 1`, batches, zstd(1, batches[0]!.length), true)
    row(`${kind} appends, ${per} per write (${kib} KiB), zstd 3`, batches, zstd(3, batches[0]!.length), false)
  }
  const batches = appendBatches(kind, 400)
  // Whether any zstd setting moves the compressed ceiling (bench/README.md): bytes against time.
  if (kind === "json") {
    row(`${kind} appends, 400 per write, zstd 1 + long-distance matching`, batches, zstd(1, batches[0]!.length, true), false)
    row(`${kind} appends, 400 per write, zstd 6`, batches, zstd(6, batches[0]!.length), false)
    row(`${kind} appends, 400 per write, zstd 19`, batches, zstd(19, batches[0]!.length), false)
  }
  row(`${kind} appends, 400 per write, gzip 6 (grpc-js)`, batches, (b) => gzipSync(b), false)
  row(`${kind} appends, 400 per write, gzip 1`, batches, (b) => gzipSync(b, { level: 1 }), false)
  row(`${kind} appends, 400 per write, deflate 6`, batches, (b) => deflateSync(b), false)
}
const snapshot = kvSnapshotJson(4_000_000)
for (const chunk of [4096, 16384, 65536]) {
  const chunks: Array<Uint8Array> = []
  for (let o = 0; o < snapshot.length; o += chunk) chunks.push(snapshot.subarray(o, o + chunk))
  row(`KV JSON snapshot, ${chunk / 1024} KiB chunks, zstd 1`, chunks, zstd(1, chunk), true)
}
