/**
 * Messages between the main thread (`worker-host.ts`) and the Iroh worker thread
 * (`worker-main.ts`). Binding objects stay in the worker and are named by numeric handles;
 * bytes cross as `Uint8Array`s whose buffers are transferred, not copied.
 */
import type { BindOptions, ConnectionActivity, EndpointFacts, PingAnswerLimits, PingAnswers } from "./binding.ts"
import type { DialAddress } from "./host.ts"

/** Each operation's arguments and result. */
export interface Operations {
  readonly bind: { readonly args: { readonly options: BindOptions; readonly ping: ReadonlyArray<number> }; readonly result: EndpointFacts }
  readonly closeEndpoint: { readonly args: object; readonly result: void }
  readonly connect: { readonly args: { readonly address: DialAddress; readonly alpn?: ReadonlyArray<number> | undefined }; readonly result: ConnectionInfo }
  readonly acceptNext: { readonly args: object; readonly result: number | null }
  readonly accept: { readonly args: { readonly incoming: number }; readonly result: ConnectionInfo & { readonly alpn: string } }
  readonly openUni: { readonly args: { readonly connection: number; readonly priority: number }; readonly result: number }
  readonly acceptUni: { readonly args: { readonly connection: number }; readonly result: number }
  readonly ping: { readonly args: { readonly connection: number }; readonly result: void }
  readonly answerPings: {
    readonly args: { readonly connection: number; readonly limits: PingAnswerLimits }
    readonly result: PingAnswers
  }
  readonly limitStreams: {
    readonly args: { readonly connection: number; readonly uni: number; readonly bi: number }
    readonly result: void
  }
  readonly refuse: { readonly args: { readonly incoming: number }; readonly result: void }
  readonly closed: { readonly args: { readonly connection: number }; readonly result: string }
  readonly activity: { readonly args: { readonly connection: number }; readonly result: ConnectionActivity }
  readonly closeConnection: {
    readonly args: { readonly connection: number; readonly code: bigint; readonly reason: string }
    readonly result: void
  }
  /** `bytes` are already framed (and led by the preamble on a stream's first write). */
  readonly write: { readonly args: { readonly stream: number; readonly bytes: Uint8Array }; readonly result: void }
  readonly read: { readonly args: { readonly stream: number; readonly maxBytes: number }; readonly result: Uint8Array }
  readonly readExact: { readonly args: { readonly stream: number; readonly bytes: number }; readonly result: Uint8Array }
  readonly stop: { readonly args: { readonly stream: number; readonly code: bigint }; readonly result: void }
}

export type Operation = keyof Operations

export interface ConnectionInfo {
  readonly connection: number
  readonly remoteId: string
}

export type Request = { [K in Operation]: { readonly id: number; readonly op: K } & Operations[K]["args"] }[Operation]

export type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }

/** The id of a request whose success needs no answer (closing a connection). */
export const NO_REPLY = 0

/** True when `bytes` is its whole buffer, so the buffer can be transferred without taking more. */
export const ownsBuffer = (bytes: Uint8Array): boolean => bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
