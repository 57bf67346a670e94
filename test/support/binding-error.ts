/**
 * Child process for the binding backtrace test: imports the module named by argv[2] (none
 * when absent), makes the Iroh binding fail one call (a dial to its own endpoint), and prints
 * as one JSON line whether the error carried a Rust backtrace.
 */
import iroh from "@number0/iroh"

const specifier = process.argv[2]
if (specifier !== undefined) await import(specifier)

const { Endpoint, EndpointAddr, EndpointId, RelayMode, presetMinimal } = iroh
const builder = Endpoint.builder()
presetMinimal(builder)
builder.relayMode(RelayMode.disabled())
builder.bindAddr("127.0.0.1:0")
const endpoint = await builder.bind()
const message = await endpoint.connect(new EndpointAddr(EndpointId.fromString(endpoint.id().toString()), null, []), [1]).then(
  () => "connected",
  (error: unknown) => error instanceof Error ? error.message : String(error)
)
await endpoint.close()
process.stdout.write(`${JSON.stringify({ failed: message !== "connected", backtrace: message.includes("Stack backtrace:") })}\n`)
