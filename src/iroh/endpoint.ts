import { Effect, type Scope } from "effect"
import iroh from "@number0/iroh"
import { TransportStartFailed } from "../transport/errors.ts"
import { loadOrCreateSecretKey } from "./identity.ts"
import { ALPN, irohCall, irohErrorMessage } from "./protocol.ts"

const { Endpoint, EndpointTicket, RelayMode, presetMinimal, presetN0 } = iroh
export type IrohEndpointRaw = InstanceType<typeof Endpoint>

export type RelayModeSetting =
  | { readonly _tag: "disabled" }
  | { readonly _tag: "default" }
  | { readonly _tag: "custom"; readonly urls: ReadonlyArray<string> }

export interface IrohEndpointOptions {
  readonly bindAddress: string
  /** Absent: a fresh identity each start (tests, throwaway nodes). */
  readonly keyFile?: string | undefined
  readonly relayMode: RelayModeSetting
}

export interface IrohEndpoint {
  readonly raw: IrohEndpointRaw
  /** Hex endpoint id: the node's public key and identity on Iroh. */
  readonly endpointId: string
  /** Direct `ip:port` addresses peers can dial. */
  readonly directAddresses: () => ReadonlyArray<string>
  /** A ticket with the id and current addresses, for peer tables on other machines. */
  readonly ticket: () => string
}

/**
 * A bound Iroh endpoint, closed when the scope closes. With relays disabled (the default)
 * the minimal preset is used: no relay, no discovery, nothing leaves the configured
 * addresses. Only `relay_mode = "default"` applies the n0 preset with its public services.
 */
export const makeIrohEndpoint = (options: IrohEndpointOptions): Effect.Effect<IrohEndpoint, TransportStartFailed, Scope.Scope> =>
  Effect.gen(function*() {
    const secretKey = options.keyFile === undefined
      ? undefined
      : yield* loadOrCreateSecretKey(options.keyFile).pipe(
        Effect.mapError((cause) => new TransportStartFailed({ transport: "iroh", cause }))
      )
    const raw = yield* Effect.acquireRelease(
      irohCall(() => {
          const builder = Endpoint.builder()
          const relay = options.relayMode
          if (relay._tag === "default") presetN0(builder)
          else presetMinimal(builder)
          builder.relayMode(
            relay._tag === "default" ? RelayMode.defaultMode()
            : relay._tag === "custom" ? RelayMode.customFromUrls([...relay.urls])
            : RelayMode.disabled()
          )
          builder.alpns([ALPN])
          builder.bindAddr(options.bindAddress)
          if (secretKey !== undefined) builder.secretKey(secretKey)
          return builder.bind()
      }, (cause) => new TransportStartFailed({ transport: "iroh", cause })),
      (endpoint) =>
        Effect.tryPromise(() => endpoint.close()).pipe(
          Effect.catch((error) => Effect.logWarning(`closing the iroh endpoint failed: ${irohErrorMessage(error)}`))
        )
    )
    const directAddresses = () => {
      const fromAddr = raw.addr().directAddresses()
      return fromAddr.length > 0 ? fromAddr : raw.boundSockets().filter((a) => !a.startsWith("[::]") && !a.startsWith("0.0.0.0"))
    }
    return {
      raw,
      endpointId: raw.id().toString(),
      directAddresses,
      ticket: () => EndpointTicket.fromAddr(raw.addr()).toString()
    }
  })
