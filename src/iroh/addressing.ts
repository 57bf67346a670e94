/** How an endpoint reaches relays and peers; shared by the host interface and the binding calls. */
export type RelayModeSetting =
  | { readonly _tag: "disabled" }
  | { readonly _tag: "default" }
  | { readonly _tag: "custom"; readonly urls: ReadonlyArray<string> }

/** How to dial a peer: a ticket (with optional extra addresses), or an endpoint id and addresses. */
export type DialAddress =
  | { readonly ticket: string; readonly endpointId?: undefined; readonly addresses: ReadonlyArray<string> }
  | { readonly ticket?: undefined; readonly endpointId: string; readonly addresses: ReadonlyArray<string> }
