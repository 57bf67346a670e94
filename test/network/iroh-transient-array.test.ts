import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { endpointAddrOf } from "../../src/iroh/binding.ts"
import { ALPN, irohCall, IrohFailure } from "../../src/iroh/protocol.ts"
import { arrayToBytes, transientArray } from "../../src/message/byte-arrays.ts"
import { rawIrohEndpoint } from "../support/raw-iroh.ts"

/**
 * `transientArray` hands the binding the same large array write after write. That is sound
 * only because `writeAll` copies its argument before it returns: this test refills the array
 * over as soon as `writeAll` returns, before its write completes, and the reader must see every
 * write as it was when it was handed over.
 */
describe("transientArray with the binding's writeAll", () => {
  it.live("every write arrives as it was when handed over, though its array is refilled at once", () =>
    Effect.gen(function*() {
      const sender = yield* rawIrohEndpoint
      const receiver = yield* rawIrohEndpoint
      const sizes = [40_000, 70_000, 20_000, 65_536, 33_000, 16_384, 100]
      const total = sizes.reduce((a, b) => a + b, 0)
      const accepted = Effect.promise(async () => {
        const incoming = await receiver.acceptNext()
        const connection = await (await incoming!.accept()).connect()
        const stream = await connection.acceptUni()
        const chunks: Array<Uint8Array> = []
        let got = 0
        while (got < total) {
          const chunk = arrayToBytes(await stream.read(12 * 1024))
          if (chunk.length === 0) break
          chunks.push(chunk)
          got += chunk.length
        }
        return Buffer.concat(chunks)
      })
      const reading = yield* Effect.forkChild(accepted, { startImmediately: true })
      const connection = yield* irohCall(() =>
        sender.connect(
          endpointAddrOf({ endpointId: receiver.id().toString(), addresses: receiver.boundSockets() }),
          ALPN
        ), IrohFailure.of)
      const stream = yield* irohCall(() => connection.openUni(), IrohFailure.of)
      // One write at a time, as the link writes a stream (concurrent writes may reorder).
      for (const [w, size] of sizes.entries()) {
        const array = transientArray(size)
        for (let i = 0; i < size; i++) array[i] = (w * 37 + i) & 0xff
        const written = stream.writeAll(array)
        // Scribble over the array before the write completes: the binding must hold its own copy.
        array.fill(0xee)
        yield* irohCall(() => written, IrohFailure.of)
      }
      const received = yield* Fiber.join(reading)
      expect(received.length).toBe(total)
      let o = 0
      sizes.forEach((size, w) => {
        for (let i = 0; i < size; i++) {
          if (received[o + i] !== ((w * 37 + i) & 0xff)) expect.fail(`write ${w} byte ${i}: ${received[o + i]}`)
        }
        o += size
      })
    }).pipe(Effect.scoped), { timeout: 30_000 })
})
