import {
  activityOf,
  answerPings,
  closeConnection,
  completeHandshake,
  directAddressesOf,
  endpointAddrOf,
  type NativeConnection,
  type NativeEndpoint,
  type NativeRecvStream,
  type NativeSendStream,
  openPrioritisedUni,
  pingOnce,
  ticketOf
} from "./binding.ts"
import { arrayToBytes } from "../message/byte-arrays.ts"
import { encodeFramesToArray } from "../message/framing.ts"
import type { IrohConnection, IrohHost, IrohRecvStream, IrohSendStream } from "./host.ts"

const sendStream = (stream: NativeSendStream): IrohSendStream => ({
  writeFrames: (payloads, lead) => stream.writeAll(encodeFramesToArray(payloads, lead))
})

const recvStream = (stream: NativeRecvStream): IrohRecvStream => ({
  read: async (maxBytes) => arrayToBytes(await stream.read(maxBytes)),
  readExact: async (bytes) => arrayToBytes(await stream.readExact(bytes)),
  stop: (code) => stream.stop(code)
})

/** A binding connection behind the host interface. */
const directConnection = (connection: NativeConnection, pingBytes: ReadonlyArray<number>): IrohConnection => ({
  remoteId: connection.remoteId().toString(),
  openUni: async (priority) => sendStream(await openPrioritisedUni(connection, priority)),
  acceptUni: async () => recvStream(await connection.acceptUni()),
  ping: () => pingOnce(connection, pingBytes),
  answerPings: (limits) => answerPings(connection, pingBytes.length, limits),
  limitStreams: (uni, bi) => {
    connection.setMaxConcurrentUniStreams(BigInt(uni))
    connection.setMaxConcurrentBiStreams(BigInt(bi))
  },
  closed: () => connection.closed(),
  activity: async () => activityOf(connection),
  close: (code, reason) => closeConnection(connection, code, reason)
})

/**
 * Iroh on the calling thread: every byte written or read is converted there, synchronously.
 * Used when `iroh_config.worker_thread = false`, and by tests that hold a bare endpoint.
 */
export const directHost = (endpoint: NativeEndpoint, alpn: ReadonlyArray<number>, pingBytes: ReadonlyArray<number>): IrohHost => {
  return {
    endpointId: endpoint.id().toString(),
    directAddresses: () => directAddressesOf(endpoint),
    ticket: () => ticketOf(endpoint),
    connect: async (address, dialAlpn = alpn) => directConnection(await endpoint.connect(endpointAddrOf(address), [...dialAlpn]), pingBytes),
    acceptNext: async () => {
      const incoming = await endpoint.acceptNext()
      if (incoming === null) return null
      return {
        accept: async () => {
          const { connection, alpn } = await completeHandshake(incoming)
          return { connection: directConnection(connection, pingBytes), alpn }
        },
        refuse: () => incoming.refuse()
      }
    },
    close: () => endpoint.close(),
    failed: new Promise<string>(() => undefined)
  }
}
