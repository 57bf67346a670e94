import { Effect, type Scope } from "effect"
import { TransportStartFailed } from "../domain/errors.ts"
import { bindEndpoint } from "./binding.ts"
import { directHost } from "./direct-host.ts"
import type { IrohHost, RelayModeSetting } from "./host.ts"
import { loadOrCreateSecretKey } from "./identity.ts"
import { ALPN, alpnBytes, irohErrorMessage, PING_BYTES, protocolsOf, type WireVersion } from "./protocol.ts"
import { applyBindingThreadPolicy, type BindingThreadPolicy } from "./thread-policy.ts"
import { startWorkerHost } from "./worker-host.ts"

export type { RelayModeSetting } from "./host.ts"

export interface IrohEndpointOptions {
  readonly bindAddress: string
  /** Absent: a fresh identity each start (tests, throwaway nodes). */
  readonly keyFile?: string | undefined
  readonly relayMode: RelayModeSetting
  /** Run the binding in a worker thread (see `worker-host.ts`); false: on this thread. */
  readonly workerThread: boolean
  /** What the binding's Tokio threads run as (default `"batch"`; see `thread-policy.ts`). */
  readonly bindingThreadPolicy?: BindingThreadPolicy | undefined
  /** The wire versions accepted (all by default; fewer only to stand in for an older node in tests). */
  readonly wireVersions?: ReadonlyArray<WireVersion> | undefined
}

/**
 * How long closing the endpoint may hold up the scope that owns it. Iroh waits for every
 * connection to drain (three probe timeouts): 0-160 ms on loopback, but 10.7 s for a
 * connection to a peer that was stopped for seconds (its round-trip estimate grew with the
 * late acknowledgements). The connections' closes are sent at once; the drain only answers
 * stray packets, and goes on in the background.
 */
const CLOSE_WAIT_MS = 1000

/**
 * A bound Iroh endpoint, closed when the scope closes, on this thread or in a worker. Relays
 * are off unless configured (see `bindEndpoint`).
 */
export const makeIrohEndpoint = (options: IrohEndpointOptions): Effect.Effect<IrohHost, TransportStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const secretKey = options.keyFile === undefined
      ? undefined
      : yield* loadOrCreateSecretKey(options.keyFile).pipe(
        Effect.mapError((cause) => new TransportStartFailed({ transport: "iroh", cause }))
      )
    const bind = { bindAddress: options.bindAddress, secretKey, relayMode: options.relayMode, alpn: ALPN, acceptAlpns: protocolsOf(options.wireVersions).map(alpnBytes) }
    const host = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async (): Promise<IrohHost> =>
          options.workerThread ? startWorkerHost(bind, PING_BYTES) : directHost(await bindEndpoint(bind), ALPN, PING_BYTES),
        catch: (cause) => new TransportStartFailed({ transport: "iroh", cause: irohErrorMessage(cause) })
      }),
      (host) =>
        // `_signal`: the wait can be given up (see irohCall).
        Effect.tryPromise((_signal) => host.close()).pipe(
          Effect.timeoutOption(CLOSE_WAIT_MS),
          Effect.flatMap((closed) =>
            closed._tag === "Some" ? Effect.void : Effect.logInfo(
              `the iroh endpoint is still closing after ${CLOSE_WAIT_MS} ms (its connections draining); not waiting for it`
            )
          ),
          Effect.catch((error) => Effect.logWarning(`closing the iroh endpoint failed: ${irohErrorMessage(error)}`))
        )
    )
    // The binding's runtime has started its threads by now: the first endpoint's bind starts them.
    yield* applyBindingThreadPolicy(options.bindingThreadPolicy ?? "batch")
    // Nothing Iroh does works after this; every pending call has already failed with it.
    yield* Effect.forkScoped(
      Effect.promise((_signal) => host.failed).pipe(Effect.flatMap((reason) => Effect.logError(reason))),
      { startImmediately: true }
    )
    return host
  })
