/**
 * Schema building blocks for config tables: defaults, strict tables, numeric ranges. Every
 * table of a node's TOML ([transport], [raft], [http]) is built from these, so they default,
 * reject unknown keys and word their errors the same way.
 */
import { Effect, Schema } from "effect"

/** Field present in the input or not: the decoded value always has it (default when absent). */
export const orDefault = <S extends Schema.Top>(schema: S, value: S["Type"]) =>
  Schema.withDecodingDefaultTypeKey<S>(Effect.succeed(value))(schema)

/** A sub-table that may be left out entirely: absent means `{}`, so every field gets its default. */
export const orEmptyTable = <S extends Schema.Top>(schema: S) =>
  Schema.withDecodingDefaultKey<S>(Effect.succeed({} as S["Encoded"]))(schema)

/** A struct that rejects unknown keys (with `onExcessProperty: "error"`) naming the known ones. */
export const table = <const Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.Struct(fields).annotate({
    messageUnexpectedKey: `Unknown key; expected one of: ${Object.keys(fields).join(", ")}`
  })

export const intAtLeast = (min: number) =>
  Schema.Number.check(
    Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= min, {
      expected: `an integer greater than or equal to ${min}`
    })
  )

export const intBetween = (min: number, max: number) =>
  Schema.Number.check(
    Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= min && n <= max, {
      expected: `an integer between ${min} and ${max}`
    })
  )

export const numberAtLeast = (min: number) =>
  Schema.Finite.check(
    Schema.makeFilter((n: number) => n >= min, { expected: `a number greater than or equal to ${min}` })
  )

export const numberBetween = (min: number, max: number) =>
  Schema.Finite.check(
    Schema.makeFilter((n: number) => n >= min && n <= max, { expected: `a number between ${min} and ${max}` })
  )

export const NonEmptyString = Schema.String.check(
  Schema.makeFilter((s: string) => s.length > 0, { expected: "a non-empty string" })
)
