import { Data, Effect } from "effect"
import iroh from "./native.ts"
import { open, readFile } from "node:fs/promises"
import { describeCause } from "../domain/errors.ts"

const { SecretKey } = iroh

/** A node key file could not be read, created or parsed. */
export class IdentityError extends Data.TaggedError("IdentityError")<{ readonly file: string; readonly reason: string }> {
  override get message() {
    return `identity key file ${this.file}: ${this.reason}`
  }
}

const toHex = (bytes: ReadonlyArray<number>): string => bytes.map((b) => b.toString(16).padStart(2, "0")).join("")

/**
 * The node's secret key from `file`, created there (mode 0600) if absent, so a node keeps its
 * endpoint id, and with it its place in every peer table, across restarts. The file holds the
 * 32-byte key as 64 hex characters.
 */
export const loadOrCreateSecretKey = (file: string): Effect.Effect<Array<number>, IdentityError> =>
  Effect.tryPromise({
    try: async () => {
      try {
        const text = (await readFile(file, "utf8")).trim()
        if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new Error("expected 64 hex characters (a 32-byte ed25519 secret key)")
        return Array.from(Buffer.from(text, "hex"))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
      }
      const key = SecretKey.generate().toBytes()
      // "wx": never overwrite a key another process wrote in the meantime.
      const handle = await open(file, "wx", 0o600)
      try {
        await handle.writeFile(`${toHex(key)}\n`)
      } finally {
        await handle.close()
      }
      return key
    },
    catch: (error) => new IdentityError({ file, reason: describeCause(error) })
  })

/** The endpoint id (hex) that a secret key yields, without binding an endpoint. */
export const endpointIdOf = (secretKey: ReadonlyArray<number>): string =>
  SecretKey.fromBytes([...secretKey]).public().toString()
