/**
 * The Iroh worker thread: owns the endpoint and every connection and stream, and does the
 * binding's per-byte `Array<number>` conversions here instead of on the main thread.
 * Node runs this file natively (type stripping), so it keeps to erasable TypeScript and
 * imports only dependency-free modules.
 */
import { parentPort } from "node:worker_threads"
import { arrayToBytes, bytesToArray, transientArray } from "../message/byte-arrays.ts"
import {
  activityOf,
  answerPings,
  bindEndpoint,
  closeConnection,
  completeHandshake,
  endpointAddrOf,
  endpointFacts,
  messageOf,
  type NativeConnection,
  type NativeEndpoint,
  type NativeIncoming,
  type NativeRecvStream,
  type NativeSendStream,
  openPrioritisedUni,
  pingOnce
} from "./binding.ts"
import { NO_REPLY, type Operation, type Operations, ownsBuffer, type Reply, type Request } from "./worker-protocol.ts"

const port = parentPort
if (port === null) throw new Error("worker-main.ts must run in a worker thread")

/** A read started before it was asked for, so the next chunk converts while the main thread decodes. */
type ReadAhead = Promise<{ readonly ok: true; readonly chunk: Array<number> } | { readonly ok: false; readonly error: unknown }>

interface RecvState {
  readonly stream: NativeRecvStream
  ahead: ReadAhead | undefined
}

interface ConnectionState {
  readonly connection: NativeConnection
  readonly streams: Array<number>
}

let endpoint: NativeEndpoint | undefined
let alpn: Array<number> = []
let pingBytes: Array<number> = []
let nextHandle = 1
const incomings = new Map<number, NativeIncoming>()
const connections = new Map<number, ConnectionState>()
const sendStreams = new Map<number, NativeSendStream>()
const recvStreams = new Map<number, RecvState>()

const need = <A>(map: ReadonlyMap<number, A>, handle: number, what: string): A => {
  const value = map.get(handle)
  if (value === undefined) throw new Error(`${what} ${handle} is gone (its connection closed)`)
  return value
}

const live = (): NativeEndpoint => {
  if (endpoint === undefined) throw new Error("the iroh endpoint is not bound")
  return endpoint
}

/** Handles of a connection and its streams are dropped once it has closed. */
const track = (connection: NativeConnection): number => {
  const handle = nextHandle++
  const state: ConnectionState = { connection, streams: [] }
  connections.set(handle, state)
  const forget = () => {
    connections.delete(handle)
    for (const s of state.streams) {
      sendStreams.delete(s)
      recvStreams.delete(s)
    }
  }
  connection.closed().then(forget, forget)
  return handle
}

const addStream = (connection: number, register: (handle: number) => void): number => {
  const handle = nextHandle++
  need(connections, connection, "connection").streams.push(handle)
  register(handle)
  return handle
}

const startRead = (stream: NativeRecvStream, maxBytes: number): ReadAhead =>
  stream.read(maxBytes).then((chunk) => ({ ok: true as const, chunk }), (error: unknown) => ({ ok: false as const, error }))

type Handlers = { readonly [K in Operation]: (request: Extract<Request, { op: K }>) => Promise<Operations[K]["result"]> }

const handlers: Handlers = {
  bind: async ({ options, ping }) => {
    endpoint = await bindEndpoint(options)
    alpn = [...options.alpn]
    pingBytes = [...ping]
    return endpointFacts(endpoint)
  },
  closeEndpoint: async () => {
    await endpoint?.close()
    // After the reply, leave only the binding's own calls: the worker exits once they settle.
    setImmediate(() => port.close())
  },
  connect: async ({ address, alpn: dialAlpn }) => {
    const connection = await live().connect(endpointAddrOf(address), dialAlpn === undefined ? alpn : [...dialAlpn])
    return { connection: track(connection), remoteId: connection.remoteId().toString() }
  },
  acceptNext: async () => {
    const incoming = await live().acceptNext()
    if (incoming === null) return null
    const handle = nextHandle++
    incomings.set(handle, incoming)
    return handle
  },
  accept: async ({ incoming }) => {
    const pending = need(incomings, incoming, "incoming connection")
    incomings.delete(incoming)
    const { connection, alpn } = await completeHandshake(pending)
    return { connection: track(connection), remoteId: connection.remoteId().toString(), alpn }
  },
  openUni: async ({ connection, priority }) => {
    const stream = await openPrioritisedUni(need(connections, connection, "connection").connection, priority)
    return addStream(connection, (h) => sendStreams.set(h, stream))
  },
  acceptUni: async ({ connection }) => {
    const stream = await need(connections, connection, "connection").connection.acceptUni()
    return addStream(connection, (h) => recvStreams.set(h, { stream, ahead: undefined }))
  },
  ping: ({ connection }) => pingOnce(need(connections, connection, "connection").connection, pingBytes),
  answerPings: ({ connection, limits }) => answerPings(need(connections, connection, "connection").connection, pingBytes.length, limits),
  limitStreams: async ({ connection, uni, bi }) => {
    const state = connections.get(connection)
    if (state === undefined) return
    state.connection.setMaxConcurrentUniStreams(BigInt(uni))
    state.connection.setMaxConcurrentBiStreams(BigInt(bi))
  },
  refuse: async ({ incoming }) => {
    const pending = need(incomings, incoming, "incoming connection")
    incomings.delete(incoming)
    await pending.refuse()
  },
  closed: ({ connection }) => need(connections, connection, "connection").connection.closed(),
  activity: async ({ connection }) => activityOf(need(connections, connection, "connection").connection),
  closeConnection: async ({ connection, code, reason }) => {
    const state = connections.get(connection)
    if (state !== undefined) closeConnection(state.connection, code, reason)
  },
  write: ({ stream, bytes }) => need(sendStreams, stream, "send stream").writeAll(bytesToArray(bytes, transientArray(bytes.length))),
  read: async ({ stream, maxBytes }) => {
    const state = need(recvStreams, stream, "receive stream")
    const result = await (state.ahead ?? startRead(state.stream, maxBytes))
    state.ahead = undefined
    if (!result.ok) throw result.error
    // Not after the end of the stream: a read there would only return empty again.
    if (result.chunk.length > 0) state.ahead = startRead(state.stream, maxBytes)
    return arrayToBytes(result.chunk)
  },
  readExact: async ({ stream, bytes }) => arrayToBytes(await need(recvStreams, stream, "receive stream").stream.readExact(bytes)),
  stop: ({ stream, code }) => need(recvStreams, stream, "receive stream").stream.stop(code)
}

const reply = (message: Reply, transfer: ReadonlyArray<ArrayBuffer>) => port.postMessage(message, [...transfer])

port.on("message", (request: Request) => {
  const handler = handlers[request.op] as (request: Request) => Promise<unknown>
  // A handler that throws before its first await must still answer.
  Promise.resolve().then(() => handler(request)).then(
    (value) => {
      if (request.id === NO_REPLY) return
      const transfer = value instanceof Uint8Array && ownsBuffer(value) ? [value.buffer as ArrayBuffer] : []
      reply({ id: request.id, ok: true, value }, transfer)
    },
    (error: unknown) => reply({ id: request.id, ok: false, error: messageOf(error) }, [])
  )
})
