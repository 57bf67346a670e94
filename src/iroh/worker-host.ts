import { Worker } from "node:worker_threads"
import { encodeFrames } from "../message/framing.ts"
import type { BindOptions, EndpointFacts } from "./binding.ts"
import type { IrohConnection, IrohHost, IrohRecvStream } from "./host.ts"
import { NO_REPLY, type Operation, type Operations, ownsBuffer, type Reply, type Request } from "./worker-protocol.ts"

/** How long a closed worker may take to exit by itself before it is terminated. */
const WORKER_EXIT_TIMEOUT_MS = 10_000

interface Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
  /** What an accept waiting when the host closes gets: the end of the accept loop, not an error. */
  readonly atClose?: { readonly value: unknown }
}

/**
 * Iroh in a worker thread (`worker-main.ts`). Every binding call becomes a message; frames
 * are built here as one `Uint8Array` and its buffer transferred, and reads come back the
 * same way, so the only per-byte work left on this thread is framing and protobuf.
 */
export const startWorkerHost = async (options: BindOptions, pingBytes: ReadonlyArray<number>): Promise<IrohHost> => {
  // The sibling with this module's own extension: `.ts` in the repository, `.js` in dist/.
  const worker = new Worker(new URL(`./worker-main${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url))
  const pending = new Map<number, Pending>()
  let nextId = NO_REPLY + 1
  let closing = false
  let ended: string | undefined
  let reportFailure: (reason: string) => void = () => undefined
  const failed = new Promise<string>((resolve) => {
    reportFailure = resolve
  })

  const end = (reason: string) => {
    if (ended !== undefined) return
    ended = reason
    if (!closing) reportFailure(reason)
    for (const p of pending.values()) {
      if (closing && p.atClose !== undefined) p.resolve(p.atClose.value)
      else p.reject(new Error(reason))
    }
    pending.clear()
  }
  worker.on("message", (reply: Reply) => {
    const p = pending.get(reply.id)
    if (p === undefined) return
    pending.delete(reply.id)
    if (reply.ok) p.resolve(reply.value)
    else p.reject(new Error(reply.error))
  })
  worker.on("error", (error) => end(`the iroh worker failed: ${error.message}`))
  worker.on("exit", (code) => end(closing ? "the iroh endpoint closed" : `the iroh worker exited with code ${code}`))

  const call = <K extends Operation>(
    op: K,
    args: Operations[K]["args"],
    transfer: ReadonlyArray<ArrayBuffer> = [],
    atClose?: { readonly value: Operations[K]["result"] }
  ): Promise<Operations[K]["result"]> => {
    if (ended !== undefined) return Promise.reject(new Error(ended))
    const id = nextId++
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject, ...(atClose === undefined ? {} : { atClose }) })
      worker.postMessage({ id, op, ...args } as Request, [...transfer])
    })
  }

  const recvStream = (stream: number): IrohRecvStream => ({
    read: (maxBytes) => call("read", { stream, maxBytes }),
    readExact: (bytes) => call("readExact", { stream, bytes }),
    stop: (code) => call("stop", { stream, code })
  })

  const connectionOf = (connection: number, remoteId: string): IrohConnection => ({
    remoteId,
    openUni: async (priority) => {
      const stream = await call("openUni", { connection, priority })
      return {
        writeFrames: (payloads, lead) => {
          const bytes = encodeFrames(payloads, lead)
          return call("write", { stream, bytes }, ownsBuffer(bytes) ? [bytes.buffer as ArrayBuffer] : [])
        }
      }
    },
    acceptUni: async () => recvStream(await call("acceptUni", { connection })),
    ping: () => call("ping", { connection }),
    answerPings: (limits) => call("answerPings", { connection, limits }),
    limitStreams: (uni, bi) => {
      if (ended === undefined) worker.postMessage({ id: NO_REPLY, op: "limitStreams", connection, uni, bi } as Request)
    },
    closed: () => call("closed", { connection }),
    activity: () => call("activity", { connection }),
    close: (code, reason) => {
      if (ended === undefined) worker.postMessage({ id: NO_REPLY, op: "closeConnection", connection, code, reason } as Request)
    }
  })

  let facts: EndpointFacts
  try {
    facts = await call("bind", { options, ping: pingBytes })
  } catch (error) {
    closing = true
    await worker.terminate()
    throw error
  }
  return {
    endpointId: facts.endpointId,
    // Fixed at bind: with relays off (the default) the bound sockets are the addresses.
    directAddresses: () => facts.directAddresses,
    ticket: () => facts.ticket,
    connect: async (address, alpn) => {
      const info = await call("connect", { address, alpn })
      return connectionOf(info.connection, info.remoteId)
    },
    acceptNext: async () => {
      const incoming = await call("acceptNext", {}, [], { value: null })
      if (incoming === null) return null
      return {
        accept: async () => {
          const info = await call("accept", { incoming })
          return { connection: connectionOf(info.connection, info.remoteId), alpn: info.alpn }
        },
        refuse: () => call("refuse", { incoming })
      }
    },
    close: async () => {
      if (closing) return
      closing = true
      const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
      // Terminating a worker while binding calls (reads, accepts, stream finishes) are still
      // running frees what they use: SIGSEGV in 3 of 18 stress processes of 30 open/close
      // cycles (napi-rs/napi-rs#1575). Closed, the worker exits on its own once they settle.
      const lastResort = setTimeout(() => void worker.terminate(), WORKER_EXIT_TIMEOUT_MS)
      try {
        await call("closeEndpoint", {})
      } catch {
        // The worker is gone or failing: it exits (or is terminated) all the same.
      }
      await exited
      clearTimeout(lastResort)
    },
    failed
  }
}
