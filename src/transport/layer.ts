import { Effect, Layer } from "effect"
import type { ConfigError } from "../config/errors.ts"
import { loadConfigFile } from "../config/load.ts"
import type { TransportConfig } from "../config/schema.ts"
import type { TransportStartFailed } from "../domain/errors.ts"
import { RaftTransport } from "../domain/raft-transport.ts"
import { makeRaftTransport } from "./service.ts"

/**
 * The transport a decoded config describes, with every resource (endpoint, server, actors)
 * scoped to the layer.
 *
 * @example
 * const layer = Layer.unwrap(Effect.map(parseConfigToml(toml), layerConfig))
 */
export const layerConfig = (config: TransportConfig): Layer.Layer<RaftTransport, TransportStartFailed> =>
  Layer.effect(RaftTransport, makeRaftTransport(config))

/** The transport the `[transport]` table of a TOML file describes. */
export const layerTomlFile = (path: string): Layer.Layer<RaftTransport, TransportStartFailed | ConfigError> =>
  Layer.unwrap(Effect.map(loadConfigFile(path), layerConfig))
