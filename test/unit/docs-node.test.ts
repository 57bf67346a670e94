/**
 * docs/node.md against the code: every ```toml block decodes with the node config decoder
 * (`parseNodeConfigToml`), blocks that show an error fail at the path they name, the defaults
 * block equals the minimal config, and the reference tables list every `[raft]`, `[http]` and
 * `[process]` field.
 *
 * Block markers (first line): `# not-a-config` skips the block (as in docs/configuration.md);
 * `# error: <path>` expects decoding to fail with an issue at `<path>`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { HttpConfig, parseNodeConfigToml, ProcessConfig } from "../../src/node/node-config.ts"
import { RaftConfig } from "../../src/raft/config.ts"

const DOC = "docs/node.md"

const doc = readFileSync(fileURLToPath(new URL(`../../${DOC}`, import.meta.url)), "utf8")

interface Block {
  readonly n: number
  readonly text: string
  /** The issue path an `# error: <path>` block must fail at. */
  readonly errorPath: string | undefined
}

const tomlBlocks = (markdown: string): Array<Block> =>
  [...markdown.matchAll(/^```toml[^\S\n]*\n([\s\S]*?)^```/gm)]
    .map((m, i) => {
      const text = m[1] ?? ""
      const first = text.split("\n")[0]?.trim() ?? ""
      return { n: i + 1, text, first, errorPath: /^# error: (\S+)$/.exec(first)?.[1] }
    })
    .filter((b) => b.first !== "# not-a-config")

const describeBlock = (b: Block) => `${DOC}, toml block #${b.n}:\n---\n${b.text}`

const blocks = tomlBlocks(doc)

describe("docs/node.md", () => {
  it.effect("every toml block decodes, or fails where it says", () =>
    Effect.gen(function*() {
      expect(blocks.length).toBeGreaterThanOrEqual(3)
      expect(blocks.some((b) => b.errorPath !== undefined)).toBe(true)
      for (const block of blocks) {
        const result = yield* Effect.result(parseNodeConfigToml(block.text))
        if (block.errorPath === undefined) {
          if (result._tag === "Failure") expect.fail(`${describeBlock(block)}\n${result.failure.message}`)
        } else {
          if (result._tag === "Success") expect.fail(`expected an error at ${block.errorPath}: ${describeBlock(block)}`)
          else expect(result.failure.issues.map((i) => i.path), describeBlock(block)).toContain(block.errorPath)
        }
      }
    }))

  it.effect("the defaults block decodes to the same [raft] and [http] as the minimal config", () =>
    Effect.gen(function*() {
      const full = blocks.find((b) => b.text.includes("snapshot_timeout_ms = 60000"))
      expect(full).toBeDefined()
      const a = yield* parseNodeConfigToml(full?.text ?? "")
      const b = yield* parseNodeConfigToml("[transport]\nnode_id = 1\n[raft]\nvoters = [1]\n")
      expect(a.raft).toEqual(b.raft)
      expect(a.http).toEqual(b.http)
      expect(a.process).toEqual(b.process)
    }))

  it("the reference tables name every [raft], [http] and [process] field", () => {
    const section = (heading: string) => doc.split(`\n### ${heading}\n`)[1]?.split("\n### ")[0] ?? ""
    const rows = (heading: string) => [...section(heading).matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1])
    expect(rows("`[raft]`").sort()).toEqual(Object.keys(RaftConfig.fields).sort())
    expect(rows("`[http]`").sort()).toEqual(Object.keys(HttpConfig.fields).sort())
    expect(rows("`[process]`").sort()).toEqual(Object.keys(ProcessConfig.fields).sort())
  })
})
