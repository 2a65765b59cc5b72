/**
 * qlog helpers of the Connection (draft-ietf-quic-qlog-quic-events, qlog 0.3 field names). Only
 * called when a `qlog` callback is configured: allocation here is fine.
 */
import { FrameType, type Frame } from '../frames.js';

export function hexOf(b: Uint8Array): string {
  let out = '';
  for (let i = 0; i < b.length; i++) out += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return out;
}

/** A frame as qlog 0.3 names it (draft-ietf-quic-qlog-quic-events: QuicFrame), main fields only. */
export function qlogFrame(f: Frame): Record<string, unknown> {
  const t = f.type;
  if (t >= 0x08 && t <= 0x0f) return { frame_type: 'stream', stream_id: f.streamId, offset: f.offset, length: f.dataLength, fin: f.fin };
  switch (t) {
    case FrameType.PADDING:
      return { frame_type: 'padding' };
    case FrameType.PING:
      return { frame_type: 'ping' };
    case FrameType.ACK:
    case FrameType.ACK_ECN: {
      const ranges: [number, number][] = [];
      for (let i = 0; i < f.ackRangeCount; i++) ranges.push([f.ackRanges[2 * i + 1]!, f.ackRanges[2 * i]!]);
      return { frame_type: 'ack', ack_delay: f.ackDelay, acked_ranges: ranges };
    }
    case FrameType.CRYPTO:
      return { frame_type: 'crypto', offset: f.offset, length: f.dataLength };
    case FrameType.RESET_STREAM:
      return { frame_type: 'reset_stream', stream_id: f.streamId, error_code: f.errorCode, final_size: f.finalSize };
    case FrameType.STOP_SENDING:
      return { frame_type: 'stop_sending', stream_id: f.streamId, error_code: f.errorCode };
    case FrameType.NEW_TOKEN:
      return { frame_type: 'new_token' };
    case FrameType.MAX_DATA:
      return { frame_type: 'max_data', maximum: f.maximum };
    case FrameType.MAX_STREAM_DATA:
      return { frame_type: 'max_stream_data', stream_id: f.streamId, maximum: f.maximum };
    case FrameType.MAX_STREAMS_BIDI:
    case FrameType.MAX_STREAMS_UNI:
      return { frame_type: 'max_streams', stream_type: t === FrameType.MAX_STREAMS_BIDI ? 'bidirectional' : 'unidirectional', maximum: f.maximum };
    case FrameType.DATA_BLOCKED:
      return { frame_type: 'data_blocked', limit: f.maximum };
    case FrameType.STREAM_DATA_BLOCKED:
      return { frame_type: 'stream_data_blocked', stream_id: f.streamId, limit: f.maximum };
    case FrameType.STREAMS_BLOCKED_BIDI:
    case FrameType.STREAMS_BLOCKED_UNI:
      return { frame_type: 'streams_blocked', stream_type: t === FrameType.STREAMS_BLOCKED_BIDI ? 'bidirectional' : 'unidirectional', limit: f.maximum };
    case FrameType.NEW_CONNECTION_ID:
      return { frame_type: 'new_connection_id', sequence_number: f.sequence, retire_prior_to: f.retirePriorTo };
    case FrameType.RETIRE_CONNECTION_ID:
      return { frame_type: 'retire_connection_id', sequence_number: f.sequence };
    case FrameType.PATH_CHALLENGE:
      return { frame_type: 'path_challenge' };
    case FrameType.PATH_RESPONSE:
      return { frame_type: 'path_response' };
    case FrameType.CONNECTION_CLOSE:
    case FrameType.CONNECTION_CLOSE_APP:
      return { frame_type: 'connection_close', error_space: t === FrameType.CONNECTION_CLOSE ? 'transport' : 'application', error_code: f.errorCode };
    case FrameType.HANDSHAKE_DONE:
      return { frame_type: 'handshake_done' };
    case FrameType.DATAGRAM:
    case FrameType.DATAGRAM_LEN:
      return { frame_type: 'datagram', length: f.dataLength };
    default:
      return { frame_type: 'unknown', raw_frame_type: t };
  }
}
