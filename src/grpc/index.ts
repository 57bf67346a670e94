export {
  batchEntryLength,
  encodeMessageBatch,
  messageBatchLength,
  type SplitBatches,
  splitBatches,
  varintLength
} from "./batch-encoding.ts"
export { type GrpcLink, type GrpcLinkOptions, type GrpcLinkTls, makeGrpcLink } from "./link.ts"
export {
  type CallAccepted,
  type CallCheck,
  type CallCheckContext,
  type CallRefused,
  checkCallMetadata,
  type GrpcServer,
  type GrpcServerOptions,
  type GrpcServerTls,
  type RefuseReason,
  runGrpcServer
} from "./server.ts"
export {
  type Ack,
  decodeAck,
  decodePingReply,
  decodePingRequest,
  encodeAck,
  encodePingReply,
  encodePingRequest,
  MetadataKey,
  passThrough,
  PING_PATH,
  type PingReply,
  type PingRequest,
  raftTransportService,
  SERVICE_NAME,
  STREAM_PATH
} from "./service-definition.ts"
