/**
 * A QUIC connection, sans-I/O (RFC 9000, 9001, 9002, 9221, 9368, 9369): datagrams and the time
 * come in through `receive`, datagrams go out through `pollTransmit`, one timer through
 * `nextTimeout`/`handleTimeout`, and everything the application sees through `pollEvent`.
 *
 * The TLS 1.3 core (tls-core, QUIC mode) is driven through CRYPTO frames: its 'send' events feed
 * the CRYPTO stream of an encryption level, its 'secret' events install packet keys.
 *
 * Error model (DESIGN.md): a ProtocolViolation from any layer closes the connection with its code
 * (TLS alerts become CRYPTO_ERROR 0x100 + alert); any other exception is a bug, closes with
 * INTERNAL_ERROR and is surfaced as an 'error' event. Nothing thrown by peer input escapes.
 *
 * Ownership: `receive` takes ownership of the datagram buffer (it is decrypted in place).
 * `pollTransmit` builds and seals packets in one reused buffer and returns an exact-size copy that
 * the caller owns (it may queue it, hand it to an asynchronous socket send, or pass it to a peer's
 * `receive`): the only allocation per datagram sent.
 */
import {
  CipherSuites,
  ConfigError,
  ProtocolViolation,
  TlsClient,
  TlsServer,
  isProtocolViolation,
  type CryptoProvider,
  type EncryptionLevel,
  type HandshakeInfo,
  type TlsEvent,
  type TlsSession,
} from '@petrel/tls-core';
import { addressKey, type Address, type CloseInfo, type ConnectionEvent, type QuicConnection, type StreamChunk, type Transmit } from './api.js';
import type { ClientConnectionConfig, ConnectionHost, QlogEvent, ServerConnectionParams, ServerTransportConfig, TransportConfig } from './config.js';
import { LocalCids, RemoteCids, cidEquals } from './cid.js';
import { TransportError, cryptoError } from './errors.js';
import {
  FrameType,
  Frame,
  ackFrameSize,
  decodeFrame,
  isAckEliciting,
  isProbingFrame,
  maxCryptoFrameData,
  maxStreamFrameData,
  writeAckFrame,
  writeCryptoFrameHeader,
  writeSimpleFrame,
  writeStreamFrameHeader,
  writeStreamValueFrame,
  cryptoFrameHeaderSize,
  streamFrameHeaderSize,
} from './frames.js';
import {
  PacketHeader,
  PacketType,
  longHeaderSize,
  packetNumberLength,
  parseHeader,
  writeLongHeader,
  writeShortHeader,
} from './header.js';
import { initialKeys } from './initial.js';
import { DatagramPool, sealPacket } from './packet.js';
import { PacketKeys, UnprotectedPacket } from './protection.js';
import { OneRttKeys } from './protection-key-update.js';
import { parseRetry } from './retry.js';
import {
  QUIC_V1,
  SUPPORTED_VERSIONS,
  areCompatibleVersions,
  chooseVersionFromNegotiation,
  isSupportedVersion,
  negotiateVersion,
  parseVersionNegotiation,
  validateClientVersionInformation,
  validateServerVersionInformation,
} from './version.js';
import { decodeTransportParameters, encodeTransportParameters, type TransportParameters } from './transport-params.js';
import { ReceivedPackets, decodeAckDelay, encodeAckDelay } from './ack.js';
import { LossRecovery, PnSpace } from './recovery.js';
import { RttEstimator } from './rtt.js';
import { createCongestionController } from './congestion/index.js';
import type { CongestionController } from './congestion/controller.js';
import { Pacer } from './pacer.js';
import { StreamManager } from './streams/manager.js';
import { CryptoStreams } from './streams/crypto.js';
import { newStreamChunkOut } from './streams/send.js';
import { isBidi, isLocallyInitiated } from './streams/ids.js';
import { varintLength, writeVarint } from './varint.js';
import { hexOf, qlogFrame } from './connection/qlog.js';

const MIN_INITIAL_DATAGRAM = 1200;
/** Datagrams of every connection are built in place in one shared pool (see DatagramPool). */
const SEND_POOL = new DatagramPool();
const UTF8 = new TextDecoder('utf-8', { fatal: false });
const UTF8_ENC = new TextEncoder();
const AEAD_TAG = 16;
/** Packets buffered while their keys are not available yet (RFC 9001 §5.7), per connection. */
const MAX_UNDECRYPTABLE = 16;
const MAX_PENDING_DATAGRAMS = 64;
const MAX_PATH_RESPONSES = 4;
/** Outstanding packets whose CRYPTO data a PTO probe in the Initial/Handshake space resends. */
const PROBE_HANDSHAKE_PACKETS = 8;
/** Smallest pacing timer step (ms). */
const PACING_STEP = 0.05;

/** Records of what a sent packet carried, for retransmission and acknowledgment (5 numbers each). */
const R_STREAM = 1; // id, offset, length, fin
const R_CRYPTO = 2; // level, offset, length
const R_ACK = 3; // largest acknowledged
const R_MAX_DATA = 4; // value
const R_MAX_STREAM_DATA = 5; // id, value
const R_MAX_STREAMS = 6; // bidi, value
const R_DATA_BLOCKED = 7; // value
const R_RESET_STREAM = 8; // id
const R_STOP_SENDING = 9; // id
const R_NEW_CID = 10; // seq
const R_RETIRE_CID = 11; // seq
const R_HANDSHAKE_DONE = 12;
const R_NEW_TOKEN = 13;
const R_STREAMS_BLOCKED = 14; // bidi, value
const R_STREAM_DATA_BLOCKED = 15; // id, value
const R_PATH_CHALLENGE = 16;

/** SentInfo records an idle connection keeps pooled (afterInput). */
const IDLE_INFO_POOL = 8;

class SentInfo {
  recs: number[] = [];
  n = 0;
  add(kind: number, a = 0, b = 0, c = 0, d = 0): void {
    const i = this.n * 5;
    const r = this.recs;
    r[i] = kind;
    r[i + 1] = a;
    r[i + 2] = b;
    r[i + 3] = c;
    r[i + 4] = d;
    this.n++;
  }
}

type State = 'handshake' | 'established' | 'closing' | 'draining' | 'closed';

interface PathState {
  remote: Address;
  key: string;
  validated: boolean;
  bytesReceived: number;
  bytesSent: number;
  /** Outstanding PATH_CHALLENGE data (8 bytes) or null. */
  challenge: Uint8Array | null;
  challengePending: boolean;
  challengeDeadline: number;
  /** When to send the PATH_CHALLENGE again if no PATH_RESPONSE came (§8.2.1: lost probes). */
  challengeRetry: number;
  /** The peer's IP address differs from the last validated path's: reset congestion state on validation (§9.4). */
  resetCongestion: boolean;
}

interface SpaceState {
  read: PacketKeys | null;
  write: PacketKeys | null;
  received: ReceivedPackets;
  nextPn: number;
  discarded: boolean;
}

const LEVEL_INDEX: Record<EncryptionLevel, number> = { initial: 0, early: 2, handshake: 1, application: 2 };

function levelOf(type: PacketType): number {
  switch (type) {
    case PacketType.Initial:
      return 0;
    case PacketType.Handshake:
      return 1;
    default:
      return 2;
  }
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return cidEquals(a, b);
}

export class Connection implements QuicConnection {
  readonly role: 'client' | 'server';
  version: number;
  private readonly provider: CryptoProvider;
  private readonly cfg: TransportConfig;
  private readonly host: ConnectionHost;
  private readonly isServer: boolean;
  private readonly supportedVersions: number[];
  private tls: TlsSession | null = null;
  private tlsQuicParams: Uint8Array | null = null;

  private state: State = 'handshake';
  private closedFlag = false;
  private now = 0;

  private readonly spaces: SpaceState[];
  private oneRtt: OneRttKeys | null = null;
  private appReadSecret: { secret: Uint8Array; suite: keyof typeof CipherSuites } | null = null;
  private appWriteSecret: { secret: Uint8Array; suite: keyof typeof CipherSuites } | null = null;
  private zeroRttWrite: PacketKeys | null = null;
  private zeroRttRead: PacketKeys | null = null;
  /** When the server drops its 0-RTT read keys (RFC 9001 §4.9.3); Infinity until set. */
  private zeroRttDiscardAt = Infinity;
  /** Client: the server rejected our 0-RTT (its new limits replace the remembered ones). */
  private zeroRttRejected = false;
  /** Server: Initial read keys of the client's original version after switching to another (RFC 9368). */
  private initialReadAlt: PacketKeys | null = null;
  private crypto: CryptoStreams;

  private rtt: RttEstimator;
  private cc: CongestionController;
  private recovery: LossRecovery<SentInfo>;
  private pacer: Pacer;
  private readonly streams: StreamManager;

  private readonly localCids: LocalCids;
  private readonly remoteCids: RemoteCids;
  private localCid: Uint8Array;
  /** Client: the DCID Initial keys derive from (random at first, then the Retry's SCID). */
  private initialKeyDcid: Uint8Array;
  /** Client: our very first DCID (original_destination_connection_id). Server: from the Endpoint. */
  private readonly originalDcid: Uint8Array;
  private retryScid: Uint8Array | null = null;
  private token: Uint8Array;
  private receivedFromPeer = false;
  private peerScidFirst: Uint8Array | null = null;
  private reactedToVn = false;
  /** Client: moved to the server's compatible Negotiated Version (RFC 9368). */
  private versionSwitched = false;
  private readonly clientScid: Uint8Array | null;

  private path: PathState;
  private prevPath: PathState | null = null;
  /** PATH_RESPONSEs due, with the size of the datagram that carried each PATH_CHALLENGE (§8.2.2: the answer to an address off the current path is padded within 3x of it). */
  private readonly pathResponses: { data: Uint8Array; remote: Address; received: number }[] = [];
  /** Datagrams a client dropped because they came from another address than the server's (§9). */
  private droppedUnknownAddress = 0;
  /** Size of the datagram being processed. */
  private rxDatagramLength = 0;
  /**
   * Bytes received from and sent to the last address off the current path (probes, §9.1): if the
   * peer then migrates there, the new path's anti-amplification budget starts from them (§8.1).
   */
  private offPathKey = '';
  private offPathRx = 0;
  private offPathTx = 0;

  private peerParams: TransportParameters | null = null;
  private idleTimeout = 0;
  private idleDeadline = Infinity;
  private lastAckElicitingSent = -1;
  private closeDeadline = Infinity;
  private closeFrame: { code: number; frameType: number; reason: string; application: boolean } | null = null;
  private closeSendPending = false;
  private closeRecvCount = 0;
  private closeRecvNext = 1;
  private closeInfo: CloseInfo | null = null;
  private keyDiscardDeadline = Infinity;
  /** We updated keys and have not yet opened a packet of the new phase (RFC 9001 §6.1). */
  private awaitingNewPhase = false;
  private pacingDeadline = Infinity;
  private maxDatagram = MIN_INITIAL_DATAGRAM;

  private handshakeDone = false;
  private handshakeConfirmed = false;
  private handshakeDonePending = false;
  private newTokenPending: Uint8Array | null = null;
  private pingPending = false;
  /** When the keep-alive PING is due (TransportConfig.keepAliveInterval), Infinity when off. */
  private keepAliveAt = Infinity;
  /** Server: re-send the unacknowledged Initial CRYPTO data now (RFC 9002 §6.2.3), and how often that happened. */
  private initialSpeedUp = false;
  private initialSpeedUps = 0;
  private info: HandshakeInfo | null = null;

  private readonly events: ConnectionEvent[] = [];
  private eventHead = 0;
  private readonly readableNotified = new Set<number>();
  private readonly datagramsOut: Uint8Array[] = [];
  private readonly undecryptable: { data: Uint8Array; remote: Address }[] = [];

  private readonly hdr = new PacketHeader();
  private readonly seals = [new PendingSeal(), new PendingSeal()];
  private readonly unp = new UnprotectedPacket();
  private readonly frame = new Frame();
  private readonly chunk = newStreamChunkOut();
  private readonly ackScratch: number[] = [];
  private readonly infoPool: SentInfo[] = [];
  private readonly probeScratch: (SentInfo | undefined)[] = [];
  private readonly qlog: ((e: QlogEvent) => void) | null;
  private readonly earlyDataRequested: boolean;

  private constructor(
    role: 'client' | 'server',
    provider: CryptoProvider,
    cfg: TransportConfig,
    host: ConnectionHost,
    version: number,
    supportedVersions: number[],
    remote: Address,
    localCid: Uint8Array,
    remoteCid: Uint8Array,
    initialKeyDcid: Uint8Array,
    originalDcid: Uint8Array,
    now: number,
    earlyData: boolean,
  ) {
    this.role = role;
    this.isServer = role === 'server';
    this.provider = provider;
    this.cfg = cfg;
    this.host = host;
    this.version = version;
    this.supportedVersions = supportedVersions;
    this.now = now;
    this.localCid = localCid;
    this.initialKeyDcid = initialKeyDcid;
    this.originalDcid = originalDcid;
    this.token = new Uint8Array(0);
    this.qlog = cfg.qlog ?? null;
    this.earlyDataRequested = earlyData;
    this.clientScid = this.isServer ? remoteCid : null;
    validateTransportConfig(cfg);

    this.spaces = [0, 1, 2].map((i) => ({
      read: null,
      write: null,
      received: new ReceivedPackets({ maxAckDelay: i === 2 ? cfg.maxAckDelay ?? 25 : 0, maxRanges: cfg.maxAckRanges ?? 64 }),
      nextPn: 0,
      discarded: false,
    }));
    this.crypto = new CryptoStreams(cfg.maxCryptoBuffer ?? 64 * 1024);
    this.rtt = new RttEstimator(cfg.initialRtt ?? 333);
    this.cc = createCongestionController(cfg.congestionControl ?? 'cubic', this.rtt, { maxDatagramSize: MIN_INITIAL_DATAGRAM });
    this.recovery = this.makeRecovery();
    this.pacer = new Pacer(this.cc, this.rtt);
    const window = cfg.streamWindow ?? 256 * 1024;
    this.streams = new StreamManager({
      isServer: this.isServer,
      maxStreamsBidi: cfg.maxStreamsBidi ?? 100,
      maxStreamsUni: cfg.maxStreamsUni ?? 100,
      streamWindowBidiLocal: window,
      streamWindowBidiRemote: window,
      streamWindowUni: window,
      maxStreamWindow: cfg.maxStreamWindow ?? 16 * 1024 * 1024,
      connWindow: cfg.connectionWindow ?? 1024 * 1024,
      maxConnWindow: cfg.maxConnectionWindow ?? 24 * 1024 * 1024,
      sendBufferSize: cfg.sendBufferSize ?? 1024 * 1024,
      ...(cfg.maxReassemblySegments !== undefined ? { maxReassemblySegments: cfg.maxReassemblySegments } : {}),
    });
    this.localCids = new LocalCids(
      () => host.newCid(),
      (c) => host.resetToken(c),
      (c, added) => host.cidChanged(c, added),
    );
    this.localCids.initial(localCid);
    this.remoteCids = new RemoteCids(remoteCid, cfg.activeConnectionIdLimit ?? 4);
    this.path = this.newPath(remote, this.isServer ? false : true);
    this.installInitialKeys();
    this.idleTimeout = cfg.maxIdleTimeout ?? 30_000;
    this.idleDeadline = this.idleTimeout > 0 ? now + this.idleTimeout : Infinity;
    if (this.qlog) {
      this.qlog({
        time: now,
        name: 'connectivity:connection_started',
        data: { ip_version: remote.address.includes(':') ? 'ipv6' : 'ipv4', dst_ip: remote.address, dst_port: remote.port, src_cid: hexOf(localCid), dst_cid: hexOf(remoteCid), protocol: 'QUIC' },
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Construction

  static client(cfg: ClientConnectionConfig, remote: Address, host: ConnectionHost, now: number): Connection {
    const versions = cfg.versions ?? (cfg.version !== undefined && isSupportedVersion(cfg.version) ? [cfg.version, ...SUPPORTED_VERSIONS.filter((v) => v !== cfg.version)] : [...SUPPORTED_VERSIONS]);
    const version = cfg.version ?? versions[0] ?? QUIC_V1;
    const cidLength = cfg.cidLength ?? 8;
    if (cidLength !== 0 && (cidLength < 4 || cidLength > 20)) throw new ConfigError('cidLength must be 0 or 4..20');
    const dcid = cfg.provider.randomBytes(8);
    const scid = cidLength === 0 ? new Uint8Array(0) : host.newCid();
    const c = new Connection('client', cfg.provider, cfg, host, version, versions, remote, scid, dcid, dcid, dcid, now, !!cfg.earlyData);
    if (cfg.token) c.token = cfg.token;
    c.startClientTls(cfg);
    return c;
  }

  static server(cfg: ServerTransportConfig, params: ServerConnectionParams, host: ConnectionHost, now: number): Connection {
    const versions = cfg.versions ?? [...SUPPORTED_VERSIONS];
    const c = new Connection(
      'server',
      cfg.provider,
      cfg,
      host,
      params.version,
      versions,
      params.remote,
      params.localCid,
      params.clientScid,
      params.initialDcid,
      params.originalDcid,
      now,
      false,
    );
    c.retryScid = params.retryScid;
    c.serverTlsConfig = cfg.tls;
    if (params.addressValidated) c.path.validated = true;
    return c;
  }

  private serverTlsConfig: ServerTransportConfig['tls'] | null = null;
  private clientCfg: ClientConnectionConfig | null = null;

  private startClientTls(cfg: ClientConnectionConfig): void {
    this.clientCfg = cfg;
    const tp = this.localTransportParams();
    this.tlsQuicParams = tp;
    const session = cfg.session;
    this.tls = new TlsClient({
      ...cfg.tls,
      provider: this.provider,
      quic: { transportParameters: tp },
      resumption: session ?? cfg.tls.resumption,
      earlyData: !!cfg.earlyData && !!session && session.maxEarlyData > 0,
      now: cfg.tls.now ?? (() => this.now),
    });
    if (session && cfg.earlyData && session.transportParameters && session.maxEarlyData > 0) {
      // RFC 9000 §7.4.1: 0-RTT uses the limits the server advertised on the earlier connection.
      try {
        const remembered = decodeTransportParameters(session.transportParameters, 'server');
        this.streams.setPeerLimits(remembered);
        if (remembered.maxDatagramFrameSize !== null) this.peerDatagramMax = remembered.maxDatagramFrameSize;
      } catch {
        // A stored ticket that does not decode just means no 0-RTT limits.
      }
    }
    this.tls.start();
    this.drainTls();
  }

  private peerDatagramMax = -1;

  private localTransportParams(): Uint8Array {
    const cfg = this.cfg;
    const window = cfg.streamWindow ?? 256 * 1024;
    const p: Partial<TransportParameters> = {
      maxIdleTimeout: cfg.maxIdleTimeout ?? 30_000,
      maxUdpPayloadSize: Math.max(1200, cfg.maxUdpPayloadSize ?? 1452),
      initialMaxData: cfg.connectionWindow ?? 1024 * 1024,
      initialMaxStreamDataBidiLocal: window,
      initialMaxStreamDataBidiRemote: window,
      initialMaxStreamDataUni: window,
      initialMaxStreamsBidi: cfg.maxStreamsBidi ?? 100,
      initialMaxStreamsUni: cfg.maxStreamsUni ?? 100,
      ackDelayExponent: cfg.ackDelayExponent ?? 3,
      maxAckDelay: cfg.maxAckDelay ?? 25,
      activeConnectionIdLimit: cfg.activeConnectionIdLimit ?? 4,
      initialSourceConnectionId: this.localCid,
      disableActiveMigration: !!cfg.disableActiveMigration,
      versionInformation: { chosenVersion: this.version, availableVersions: this.supportedVersions.filter(isSupportedVersion) },
    };
    if ((cfg.maxDatagramFrameSize ?? 0) > 0) p.maxDatagramFrameSize = cfg.maxDatagramFrameSize!;
    if (this.isServer) {
      p.originalDestinationConnectionId = this.originalDcid;
      p.statelessResetToken = this.host.resetToken(this.localCid);
      if (this.retryScid) p.retrySourceConnectionId = this.retryScid;
    }
    return encodeTransportParameters(p, this.isServer ? 'server' : 'client');
  }

  private makeRecovery(): LossRecovery<SentInfo> {
    return new LossRecovery<SentInfo>({
      isServer: this.isServer,
      cc: this.cc,
      rtt: this.rtt,
      handler: { onAcked: (s, pn, info) => this.onPacketAcked(s, info), onLost: (s, pn, info) => {
          if (this.qlog) this.qlog({ time: this.now, name: 'recovery:packet_lost', data: { header: { packet_type: LEVEL_PACKET_TYPES[s], packet_number: pn } } });
          this.onPacketLost(s, info);
        } },
    });
  }

  private newPath(remote: Address, validated: boolean): PathState {
    return { remote, key: addressKey(remote), validated, bytesReceived: 0, bytesSent: 0, challenge: null, challengePending: false, challengeDeadline: Infinity, challengeRetry: Infinity, resetCongestion: false };
  }

  private installInitialKeys(): void {
    const v = isSupportedVersion(this.version) ? this.version : QUIC_V1;
    const k = initialKeys(this.provider, v, this.initialKeyDcid, this.isServer);
    this.spaces[0]!.read = k.read;
    this.spaces[0]!.write = k.write;
  }

  // ---------------------------------------------------------------------------------------------
  // Public state

  get remote(): Address {
    return this.path.remote;
  }
  get isClosed(): boolean {
    return this.closedFlag;
  }
  get handshakeComplete(): boolean {
    return this.handshakeDone;
  }
  /** The negotiated TLS parameters (null before the handshake completes). */
  get handshakeInfo(): HandshakeInfo | null {
    return this.info;
  }
  /** Non-null while the TLS server waits for an asynchronous certificate resolver: await, then poll again. */
  get pending(): Promise<void> | null {
    return this.tls?.pending ?? null;
  }
  /** Counters for tests, qlog and benchmarks. */
  get stats(): { rtt: number; cwnd: number; bytesInFlight: number; keyUpdates: number; lost: number; sentPackets: number; version: number; retry: boolean; droppedUnknownAddress: number } {
    return {
      rtt: this.rtt.smoothedRtt,
      cwnd: this.cc.window,
      bytesInFlight: this.cc.bytesInFlight,
      keyUpdates: this.oneRtt?.generation ?? 0,
      lost: this.lostPackets,
      sentPackets: this.sentPackets,
      version: this.version,
      retry: this.retryScid !== null,
      droppedUnknownAddress: this.droppedUnknownAddress,
    };
  }
  private lostPackets = 0;
  private sentPackets = 0;

  // ---------------------------------------------------------------------------------------------
  // Receive

  receive(datagram: Uint8Array, remote: Address, now: number): void {
    if (this.closedFlag) return;
    this.now = Math.max(this.now, now);
    try {
      this.receiveDatagram(datagram, remote, now);
      if (this.replayPending) this.replayUndecryptable(now);
      this.afterInput(now);
    } catch (e) {
      this.fail(e, now);
    }
  }

  private receiveDatagram(buf: Uint8Array, remote: Address, now: number): void {
    if (this.state === 'draining') return;
    if (this.state === 'closing') {
      // §10.2.1: answer with the CONNECTION_CLOSE again, to a progressively increasing number of
      // received datagrams (1st, 2nd, 4th, 8th, ...), so that a flood gets few answers.
      if (++this.closeRecvCount >= this.closeRecvNext) {
        this.closeRecvNext *= 2;
        this.closeSendPending = true;
      }
      return;
    }
    const pr = this.path.remote;
    const onPath = remote.port === pr.port && remote.address === pr.address;
    // RFC 9000 §9: "If a client receives packets from an unknown server address, the client MUST
    // discard these packets" (servers do not migrate; we use no preferred_address).
    if (!onPath && !this.isServer) {
      this.droppedUnknownAddress++;
      return;
    }
    if (onPath) this.path.bytesReceived += buf.length;
    this.rxDatagramLength = buf.length;
    let off = 0;
    let processedAny = false;
    let firstFailed = false;
    const h = this.hdr;
    while (off < buf.length) {
      if (!parseHeader(buf, off, buf.length, this.localCid.length, h)) break;
      const end = h.packetEnd;
      const r = this.receivePacket(buf, h, remote, onPath, now, buf.length);
      if (r === 1) processedAny = true;
      else if (off === 0 && r === 0) firstFailed = true;
      if (this.state !== 'handshake' && this.state !== 'established') return;
      off = end;
    }
    if (this.isServer && !this.path.validated) this.recovery.setAmplificationBlocked(this.amplificationBudget() < this.smallestUsefulDatagram(), now);
    // An authenticated datagram from another address that did not move the connection (a probe).
    if (!onPath && processedAny) {
      const key = addressKey(remote);
      if (key !== this.path.key) this.countOffPath(key, buf.length, 0);
    }
    if (processedAny) {
      this.idleDeadline = this.idleTimeout > 0 ? now + this.effectiveIdle() : Infinity;
      this.lastAckElicitingSent = -1;
    } else if (firstFailed && this.remoteCids.isResetToken(buf)) {
      // RFC 9000 §10.3.1: an unprocessable datagram ending in a reset token we were given.
      this.enterDraining({ code: 0, frameType: 0, reason: 'stateless reset', application: false, remote: true, kind: 'stateless-reset' }, now, true);
    }
  }

  /** Returns 1 if the packet was processed, 0 if dropped, -1 if buffered for later keys. */
  private receivePacket(buf: Uint8Array, h: PacketHeader, remote: Address, onPath: boolean, now: number, dgramLen: number): number {
    switch (h.type) {
      case PacketType.VersionNegotiation:
        if (!this.isServer) this.onVersionNegotiation(buf, h, now);
        return 0;
      case PacketType.Retry:
        if (!this.isServer) this.onRetry(buf, h, now);
        return 0;
      case PacketType.UnknownVersion:
        return 0;
    }
    // RFC 9000 §5.2: a short-header packet must be for one of our connection IDs (stale packets of
    // an earlier connection on the same address are dropped, and may be a stateless reset).
    if (!h.long && h.dcidLength > 0 && !this.isOurCid(buf, h.dcidOffset, h.dcidLength)) return 0;
    if (h.long && h.version !== this.version) {
      if (!this.acceptOtherVersion(h.version, h.type)) return 0;
    }
    if (h.long && h.type === PacketType.Initial && this.isServer && dgramLen < MIN_INITIAL_DATAGRAM) return 0; // §14.1
    if (h.long && !this.isServer && h.type === PacketType.ZeroRtt) return 0;
    const level = levelOf(h.type);
    const space = this.spaces[level]!;
    if (space.discarded) return 0;

    // Choose keys.
    let keys: PacketKeys | null = null;
    let zeroRtt = false;
    if (h.type === PacketType.Initial) {
      if (h.version === this.version) keys = space.read;
      else keys = this.isServer ? this.initialReadAlt : h.version === this.pendingVersion ? this.pendingVersionKeys!.read : null;
      if (!keys) return 0;
    } else if (h.type === PacketType.Handshake) {
      keys = space.read;
    } else if (h.type === PacketType.ZeroRtt) {
      zeroRtt = true;
      keys = this.zeroRttRead;
      if (!keys) {
        if (this.oneRtt || this.handshakeDone || !this.isServer) return 0; // 0-RTT keys will never come
        return this.bufferUndecryptable(buf, h, remote);
      }
    }
    if (h.type === PacketType.OneRtt) {
      if (!this.oneRtt || (this.isServer && !this.handshakeDone)) return this.bufferUndecryptable(buf, h, remote);
    } else if (!keys) {
      return this.bufferUndecryptable(buf, h, remote);
    }

    const u = this.unp;
    const largest = space.received.largest;
    let ok: boolean;
    let keyUpdated = false;
    if (h.type === PacketType.OneRtt) {
      const k = this.oneRtt!;
      const gen = k.generation;
      ok = k.removeHeaderProtection(buf, h.headerOffset, h.pnOffset, h.packetEnd, largest, u) && k.decrypt(buf, u);
      keyUpdated = ok && k.generation !== gen;
      if (!ok && k.integrityLimitReached()) throw new ProtocolViolation('quic', TransportError.AEAD_LIMIT_REACHED, 'too many packets failed authentication');
    } else {
      ok = keys!.unprotect(buf, h.headerOffset, h.pnOffset, h.packetEnd, largest, u);
    }
    if (!ok) return 0;
    if (space.received.isDuplicate(u.pn)) return 0;
    if (!this.isServer && h.version !== this.version && h.version === this.pendingVersion) {
      // An Initial of the server's chosen version opened: switch (RFC 9368 §4).
      this.versionSwitched = true;
      this.version = h.version;
      this.spaces[0]!.read = this.pendingVersionKeys!.read;
      this.spaces[0]!.write = this.pendingVersionKeys!.write;
      this.pendingVersion = -1;
      this.pendingVersionKeys = null;
    }

    if (!this.receivedFromPeer) {
      this.receivedFromPeer = true;
      if (!this.isServer && h.long) {
        // The server's first packet chooses its CID (§7.2).
        const scid = buf.slice(h.scidOffset, h.scidOffset + h.scidLength);
        this.peerScidFirst = scid;
        this.remoteCids.replaceInitial(scid);
      }
    }
    if (keyUpdated) {
      this.keyDiscardDeadline = now + 3 * this.recovery.ptoPeriod();
      this.pushEvent({ type: 'keyUpdate', phase: this.oneRtt!.generation, initiatedBy: 'peer' });
    } else if (this.awaitingNewPhase && h.type === PacketType.OneRtt && this.oneRtt!.receivedInCurrentPhase) {
      // RFC 9001 §6.1: after our own update, the previous read keys stay until a packet protected
      // with the new keys was opened; they go about 3 PTO after that.
      this.awaitingNewPhase = false;
      this.keyDiscardDeadline = now + 3 * this.recovery.ptoPeriod();
    }
    if (this.zeroRttRead && h.type === PacketType.OneRtt && this.zeroRttDiscardAt === Infinity) {
      // RFC 9001 §4.9.3: the server discards 0-RTT keys (at most 3 PTO) after its first 1-RTT packet.
      this.zeroRttDiscardAt = now + 3 * this.recovery.ptoPeriod();
    }

    this.rxDcidOffset = h.dcidOffset;
    this.rxDcidLength = h.dcidLength;
    if (this.qlog) this.qlogFrames = [];
    this.processFrames(buf, u.payloadOffset, u.payloadEnd, h.type, level, remote, now);
    if (this.qlog) {
      this.qlog({ time: now, name: 'transport:packet_received', data: { header: { packet_type: packetTypeName(h.type), packet_number: u.pn }, raw: { length: h.packetEnd - h.headerOffset }, frames: this.qlogFrames } });
      this.qlogFrames = null;
    }
    if (!space.received.onPacketReceived(u.pn, now, this.rxAckEliciting)) return 0;

    if (this.isServer && h.type === PacketType.Handshake) {
      // §8.1: a Handshake packet proves the client's address; §4.9.1 (RFC 9001): discard Initial keys.
      this.path.validated = true;
      this.recovery.setAmplificationBlocked(false, now);
      this.discardSpace(0, now);
    }
    if (level === 2 && !zeroRtt && this.rxNonProbing && !onPath && u.pn >= space.received.largest) {
      const key = addressKey(remote);
      if (key !== this.path.key) {
        this.onPeerAddressChanged(remote, key, now);
        // What came from the new address (this datagram, and the probes before it) counts toward
        // the new path's anti-amplification budget, and what we sent there against it (§8.1).
        if (this.path.key === key) {
          const probed = this.offPathKey === key;
          this.path.bytesReceived += dgramLen + (probed ? this.offPathRx : 0);
          this.path.bytesSent += probed ? this.offPathTx : 0;
        }
        this.offPathKey = '';
      }
    }
    return 1;
  }

  /** The last of our CIDs a packet arrived on (fast path: one byte compare per packet). */
  private rxCid: Uint8Array | null = null;

  private isOurCid(buf: Uint8Array, off: number, len: number): boolean {
    const c = this.rxCid ?? this.localCid;
    if (c.length === len) {
      let i = 0;
      while (i < len && buf[off + i] === c[i]) i++;
      if (i === len) return true;
    }
    const cid = buf.subarray(off, off + len);
    if (!this.localCids.isActive(cid)) return false;
    this.rxCid = cid.slice();
    return true;
  }

  private bufferUndecryptable(buf: Uint8Array, h: PacketHeader, remote: Address): number {
    if (this.undecryptable.length < MAX_UNDECRYPTABLE) {
      this.undecryptable.push({ data: buf.slice(h.headerOffset, h.packetEnd), remote });
    }
    return -1;
  }

  private replayPending = false;

  private replayUndecryptable(now: number): void {
    this.replayPending = false;
    if (this.undecryptable.length === 0) return;
    const list = this.undecryptable.splice(0);
    for (const p of list) {
      if (this.state !== 'handshake' && this.state !== 'established') return;
      this.receiveDatagram(p.data, p.remote, now);
    }
  }

  /** A long header with another version than ours: compatible version negotiation (RFC 9368). */
  private acceptOtherVersion(version: number, type: PacketType): boolean {
    if (!isSupportedVersion(version) || !this.supportedVersions.includes(version)) return false;
    if (this.isServer) {
      // The client's first Initials may still carry its original version.
      return type === PacketType.Initial && this.initialReadAlt !== null && version === this.clientOriginalVersion;
    }
    // RFC 9368 §4: the server may acknowledge our first packets in our Chosen Version and switch to
    // the Negotiated Version once it has the whole ClientHello, so a v1 ACK does not rule the
    // switch out; the ServerHello (hence Handshake keys) does, and so does an earlier switch.
    if (this.versionSwitched || this.spaces[1]!.read !== null || !areCompatibleVersions(this.version, version)) return false;
    if (type !== PacketType.Initial) return false; // the switch comes with the server's Initial
    // The server chose another compatible version: that version's Initial keys (same DCID) open
    // this packet, and only a packet that opens with them switches us (an unauthenticated packet
    // with another version number must not move the connection off the real server's version).
    if (this.pendingVersion !== version) {
      this.pendingVersion = version;
      this.pendingVersionKeys = initialKeys(this.provider, version, this.initialKeyDcid, false);
    }
    return true;
  }

  /** Client: a compatible version the server may have switched to, and its Initial keys (RFC 9368 §4). */
  private pendingVersion = -1;
  private pendingVersionKeys: { read: PacketKeys; write: PacketKeys } | null = null;

  private onVersionNegotiation(buf: Uint8Array, h: PacketHeader, now: number): void {
    if (this.receivedFromPeer || this.reactedToVn) return;
    const vn = parseVersionNegotiation(buf, h.headerOffset, h.packetEnd);
    if (!vn) return;
    // §6.2 (RFC 9000): the VN must echo our CIDs.
    if (!cidEquals(vn.dcid, this.localCid) || !cidEquals(vn.scid, this.initialKeyDcid)) return;
    if (vn.versions.includes(this.version)) return;
    const chosen = chooseVersionFromNegotiation(this.version, vn.versions, this.supportedVersions.filter(isSupportedVersion));
    if (chosen === null) {
      this.enterDraining({ code: 0, frameType: 0, reason: `no common QUIC version (server offers ${vn.versions.map((v) => '0x' + v.toString(16)).join(', ')})`, application: false, remote: true, kind: 'version-negotiation' }, now, true);
      return;
    }
    // Start over with the chosen version (a new first flight).
    this.reactedToVn = true;
    this.version = chosen;
    this.restartHandshake(now);
  }

  private onRetry(buf: Uint8Array, h: PacketHeader, now: number): void {
    if (this.receivedFromPeer || this.retryScid !== null) return; // §17.2.5.2: only one Retry, before anything else
    const r = parseRetry(this.provider, buf.subarray(h.headerOffset, h.packetEnd), this.originalDcid);
    if (!r || r.version !== this.version || !cidEquals(r.dcid, this.localCid)) return;
    if (cidEquals(r.scid, this.originalDcid)) return;
    this.retryScid = r.scid;
    this.token = r.token;
    this.initialKeyDcid = r.scid;
    this.remoteCids.replaceInitial(r.scid);
    this.restartHandshake(now);
  }

  /** After Retry or Version Negotiation: new Initial keys, recovery state, and the first flight again. */
  private restartHandshake(now: number): void {
    this.installInitialKeys();
    this.spaces[0]!.received = new ReceivedPackets({ maxAckDelay: 0, maxRanges: this.cfg.maxAckRanges ?? 64 });
    const pn = this.spaces[0]!.nextPn;
    // The server dropped our 0-RTT packets (RFC 9000 §17.2.5.3 / §6.2): their stream data is
    // declared lost so it goes out again (0-RTT with the new keys, or 1-RTT).
    this.recovery.onZeroRttRejected(now);
    this.recovery.discardSpace(PnSpace.initial, now);
    this.rtt = new RttEstimator(this.cfg.initialRtt ?? 333);
    this.cc = createCongestionController(this.cfg.congestionControl ?? 'cubic', this.rtt, { maxDatagramSize: MIN_INITIAL_DATAGRAM });
    this.recovery = this.makeRecovery();
    this.pacer = new Pacer(this.cc, this.rtt);
    this.spaces[0]!.nextPn = pn; // packet numbers keep increasing (§17.2.5.3)
    this.crypto = new CryptoStreams(this.cfg.maxCryptoBuffer ?? 64 * 1024);
    this.zeroRttWrite = null;
    this.undecryptable.length = 0;
    if (this.clientCfg) this.startClientTls(this.clientCfg);
    void now;
  }

  // ---------------------------------------------------------------------------------------------
  // Frames

  private processFrames(
    buf: Uint8Array,
    start: number,
    end: number,
    type: PacketType,
    level: number,
    remote: Address,
    now: number,
  ): void {
    const f = this.frame;
    let off = start;
    let ackEliciting = false;
    let nonProbing = false;
    if (start >= end) throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, 'packet without frames');
    while (off < end) {
      off = decodeFrame(buf, off, end, type, f);
      const t = f.type;
      if (isAckEliciting(t)) ackEliciting = true;
      if (!isProbingFrame(t)) nonProbing = true;
      if (this.qlogFrames) this.qlogFrames.push(qlogFrame(f));
      this.onFrame(f, buf, level, remote, now);
      if (this.state === 'draining' || this.state === 'closed') break;
    }
    this.rxAckEliciting = ackEliciting;
    this.rxNonProbing = nonProbing;
  }

  /** Results of the last processFrames (fields, not an object per packet). */
  private rxAckEliciting = false;
  /** qlog only: the frames of the packet being processed. */
  private qlogFrames: Record<string, unknown>[] | null = null;
  private rxNonProbing = false;
  /** Where the DCID of the packet being processed is (RETIRE_CONNECTION_ID checks it). */
  private rxDcidOffset = 0;
  private rxDcidLength = 0;

  private onFrame(f: Frame, buf: Uint8Array, level: number, remote: Address, now: number): void {
    const t = f.type;
    if (t >= 0x08 && t <= 0x0f) {
      const s = this.streams.onStreamFrame(f.streamId, f.offset, buf.subarray(f.dataOffset, f.dataOffset + f.dataLength), f.fin, t);
      this.announceOpened();
      if (s && (s.readable > 0 || s.finalSize >= 0) && !this.readableNotified.has(f.streamId)) {
        this.readableNotified.add(f.streamId);
        this.pushEvent({ type: 'streamReadable', id: f.streamId });
      }
      return;
    }
    switch (t) {
      case FrameType.PADDING:
      case FrameType.PING:
        return;
      case FrameType.ACK:
      case FrameType.ACK_ECN:
        this.onAckFrame(f, level, now);
        return;
      case FrameType.CRYPTO: {
        const cs = this.crypto.get(level as 0 | 1 | 2);
        // RFC 9002 §6.2.3: a server that receives an Initial with CRYPTO data it already has (the
        // client's PTO repeating its ClientHello) can assume its own Initial data did not arrive,
        // and sends its unacknowledged Initial CRYPTO data again at once instead of at its own
        // (backed-off) PTO; a limited number of times per connection, within the amplification limit.
        if (this.isServer && level === 0 && f.dataLength > 0 && f.offset + f.dataLength <= cs.recv.readOffset && this.initialSpeedUps < 3 && cs.send.ackedPrefix < cs.send.writeOffset) {
          this.initialSpeedUps++;
          this.initialSpeedUp = true;
        }
        cs.onCryptoFrame(f.offset, buf.subarray(f.dataOffset, f.dataOffset + f.dataLength));
        this.feedTls(level, now);
        return;
      }
      case FrameType.RESET_STREAM: {
        const s = this.streams.onResetStream(f.streamId, f.errorCode, f.finalSize);
        this.announceOpened();
        if (s) this.pushEvent({ type: 'streamReset', id: f.streamId, code: f.errorCode, finalSize: f.finalSize });
        if (!this.streams.recvStreams.has(f.streamId)) this.readableNotified.delete(f.streamId);
        return;
      }
      case FrameType.STOP_SENDING: {
        const s = this.streams.onStopSending(f.streamId, f.errorCode);
        this.announceOpened();
        if (s) this.sendCtrlDirty.add(f.streamId);
        if (s) this.pushEvent({ type: 'streamStopped', id: f.streamId, code: f.errorCode });
        return;
      }
      case FrameType.NEW_TOKEN:
        if (this.isServer) throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, 'a client sent NEW_TOKEN', t);
        this.pushEvent({ type: 'newToken', token: f.data() });
        return;
      case FrameType.MAX_DATA:
        if (this.streams.onMaxData(f.maximum)) this.checkWritable();
        return;
      case FrameType.MAX_STREAM_DATA:
        if (this.streams.onMaxStreamData(f.streamId, f.maximum)) this.checkWritable();
        return;
      case FrameType.MAX_STREAMS_BIDI:
      case FrameType.MAX_STREAMS_UNI: {
        const bidi = t === FrameType.MAX_STREAMS_BIDI;
        if (this.streams.onMaxStreams(bidi, f.maximum)) this.pushEvent({ type: 'streamsAvailable', bidi });
        return;
      }
      case FrameType.DATA_BLOCKED:
        return;
      case FrameType.STREAM_DATA_BLOCKED:
        this.streams.onStreamDataBlocked(f.streamId);
        this.announceOpened();
        return;
      case FrameType.STREAMS_BLOCKED_BIDI:
      case FrameType.STREAMS_BLOCKED_UNI:
        this.streams.onStreamsBlocked(t === FrameType.STREAMS_BLOCKED_BIDI, f.maximum);
        return;
      case FrameType.NEW_CONNECTION_ID:
        this.remoteCids.onNewCid(f.sequence, f.retirePriorTo, f.data(), buf.slice(f.resetTokenOffset, f.resetTokenOffset + 16));
        return;
      case FrameType.RETIRE_CONNECTION_ID:
        this.localCids.onRetire(f.sequence, buf.subarray(this.rxDcidOffset, this.rxDcidOffset + this.rxDcidLength));
        this.topUpCids();
        return;
      case FrameType.PATH_CHALLENGE:
        if (this.pathResponses.length < MAX_PATH_RESPONSES) this.pathResponses.push({ data: f.data(), remote, received: this.rxDatagramLength });
        return;
      case FrameType.PATH_RESPONSE:
        this.onPathResponse(f, now);
        return;
      case FrameType.CONNECTION_CLOSE:
      case FrameType.CONNECTION_CLOSE_APP: {
        const reason = UTF8.decode(buf.subarray(f.dataOffset, f.dataOffset + f.dataLength));
        this.enterDraining({ code: f.errorCode, frameType: t === FrameType.CONNECTION_CLOSE ? f.frameType : 0, reason, application: t === FrameType.CONNECTION_CLOSE_APP, remote: true, kind: 'close' }, now, false);
        return;
      }
      case FrameType.HANDSHAKE_DONE:
        if (this.isServer) throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, 'a client sent HANDSHAKE_DONE', t);
        this.confirmHandshake(now);
        return;
      case FrameType.DATAGRAM:
      case FrameType.DATAGRAM_LEN: {
        const max = this.cfg.maxDatagramFrameSize ?? 0;
        if (max <= 0) throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, 'DATAGRAM frame without max_datagram_frame_size', t);
        if (f.dataLength > max) throw new ProtocolViolation('quic', TransportError.PROTOCOL_VIOLATION, 'DATAGRAM frame larger than max_datagram_frame_size', t);
        if (this.pendingDatagramEvents < MAX_PENDING_DATAGRAMS) {
          this.pendingDatagramEvents++;
          this.pushEvent({ type: 'datagram', data: f.data() });
        }
        return;
      }
      default:
        throw new ProtocolViolation('quic', TransportError.FRAME_ENCODING_ERROR, `unhandled frame type 0x${t.toString(16)}`, t);
    }
  }

  private pendingDatagramEvents = 0;

  private onAckFrame(f: Frame, level: number, now: number): void {
    const exp = level === 2 && this.peerParams ? this.peerParams.ackDelayExponent : 3;
    const largest = f.ackRanges[0]!;
    const ce = f.type === FrameType.ACK_ECN ? f.ce : -1;
    this.recovery.onAckReceived(level as PnSpace, f.ackRanges, f.ackRangeCount, decodeAckDelay(f.ackDelay, exp), now, ce);
    if (this.qlog) this.qlogMetrics(now);
    if (level === 2 && this.oneRtt) this.oneRtt.onAckReceived(largest);
    if (!this.isServer && level === 1) {
      // §8.1 / RFC 9002 A.6: an ACK of a Handshake packet proves the server got our address.
      this.recovery.setHasHandshakeKeys(now);
    }
    this.checkWritable();
  }

  private onPacketAcked(space: PnSpace, info: SentInfo | undefined): void {
    if (!info) return;
    const r = info.recs;
    for (let i = 0; i < info.n; i++) {
      const k = r[i * 5]!;
      const a = r[i * 5 + 1]!;
      const b = r[i * 5 + 2]!;
      const c = r[i * 5 + 3]!;
      switch (k) {
        case R_STREAM: {
          const s = this.streams.sendStreams.get(a);
          if (s) {
            s.onAcked(b, c, r[i * 5 + 4]! === 1);
            this.streams.maybeClose(a);
          }
          break;
        }
        case R_CRYPTO:
          this.crypto.get(a as 0 | 1 | 2).onAcked(b, c);
          break;
        case R_ACK:
          this.spaces[space]!.received.onAckOfAckReceived(a);
          break;
        case R_RESET_STREAM: {
          const s = this.streams.sendStreams.get(a);
          if (s) {
            s.onResetAcked();
            this.streams.maybeClose(a);
          }
          break;
        }
      }
    }
    this.releaseInfo(info);
  }

  private onPacketLost(space: PnSpace, info: SentInfo | undefined): void {
    this.lostPackets++;
    if (!info) return;
    for (let i = 0; i < info.n; i++) this.requeue(info.recs, i);
    this.releaseInfo(info);
  }

  /**
   * Queues again what record `i` of a sent packet carried (its packet was lost, or a PTO probe
   * repeats it). Returns false when nothing is owed any more (stream reset or gone, space discarded).
   */
  private requeue(r: number[], i: number): boolean {
    const k = r[i * 5]!;
    const a = r[i * 5 + 1]!;
    const b = r[i * 5 + 2]!;
    const c = r[i * 5 + 3]!;
    switch (k) {
      case R_STREAM: {
        const s = this.streams.sendStreams.get(a);
        if (!s || s.isReset) return false;
        s.onLost(b, c, r[i * 5 + 4]! === 1);
        break;
      }
      case R_CRYPTO:
        if (this.spaces[a]!.discarded) return false;
        this.crypto.get(a as 0 | 1 | 2).onLost(b, c);
        break;
      case R_MAX_DATA:
        this.streams.connRecv.onUpdateLost(a);
        break;
      case R_MAX_STREAM_DATA:
        this.streams.recvStreams.get(a)?.flow.onUpdateLost(b);
        this.recvCtrlDirty.add(a);
        break;
      case R_STREAM_DATA_BLOCKED:
        this.streams.sendStreams.get(a)?.credit.onBlockedLost(b);
        this.sendCtrlDirty.add(a);
        break;
      case R_MAX_STREAMS:
        this.streams.onMaxStreamsLost(a === 1, b);
        break;
      case R_DATA_BLOCKED:
        this.streams.connSend.onBlockedLost(a);
        break;
      case R_RESET_STREAM:
        this.streams.sendStreams.get(a)?.onResetLost();
        this.sendCtrlDirty.add(a);
        break;
      case R_STOP_SENDING:
        this.streams.recvStreams.get(a)?.onStopSendingLost();
        this.recvCtrlDirty.add(a);
        break;
      case R_NEW_CID: {
        const c2 = this.localCids.all().find((x) => x.seq === a);
        if (c2) this.localCids.pendingNew.push(c2);
        break;
      }
      case R_RETIRE_CID:
        this.remoteCids.pendingRetire.push(a);
        break;
      case R_HANDSHAKE_DONE:
        this.handshakeDonePending = true;
        break;
      case R_PATH_CHALLENGE:
        if (this.path.challenge) this.path.challengePending = true;
        break;
      case R_STREAMS_BLOCKED:
        this.streams.onStreamsBlockedLost(a === 1, b);
        break;
      case R_NEW_TOKEN:
        if (this.lastNewToken) this.newTokenPending = this.lastNewToken;
        break;
    }
    return true;
  }

  private lastNewToken: Uint8Array | null = null;

  private takeInfo(): SentInfo {
    const i = this.infoPool.pop() ?? new SentInfo();
    i.n = 0;
    return i;
  }
  private releaseInfo(i: SentInfo): void {
    if (this.infoPool.length < 256) this.infoPool.push(i);
  }

  private announceOpened(): void {
    for (let id = this.streams.pollOpened(); id >= 0; id = this.streams.pollOpened()) {
      this.pushEvent({ type: 'streamOpened', id, bidi: isBidi(id) });
    }
  }

  /** 'streamWritable' for streams whose last write() was short and that have room again. */
  private checkWritable(): void {
    if (this.writeBlocked.size === 0) return;
    for (const id of this.writeBlocked) {
      const s = this.streams.sendStreams.get(id);
      if (!s || s.isReset) this.writeBlocked.delete(id);
      else if (s.pollWritable()) {
        this.writeBlocked.delete(id);
        this.pushEvent({ type: 'streamWritable', id });
      }
    }
  }

  /** Streams with a short write() pending a 'streamWritable' event. */
  private readonly writeBlocked = new Set<number>();
  /** Receive parts that may owe MAX_STREAM_DATA / STOP_SENDING. */
  private readonly recvCtrlDirty = new Set<number>();
  /** Send parts that may owe RESET_STREAM / STREAM_DATA_BLOCKED. */
  private readonly sendCtrlDirty = new Set<number>();

  // ---------------------------------------------------------------------------------------------
  // TLS

  private helloBuf = new Uint8Array(0);
  private clientOriginalVersion = 0;

  private feedTls(level: number, now: number): void {
    if (this.isServer && !this.tls) {
      if (level !== 0) return;
      if (!this.startServerTls(now)) return;
    }
    const cs = this.crypto.get(level as 0 | 1 | 2);
    const data = cs.read();
    if (data && data.length > 0) {
      this.tls!.receive(level === 0 ? 'initial' : level === 1 ? 'handshake' : 'application', data);
      this.drainTls();
    }
  }

  /**
   * Server: the TLS server is created once the whole ClientHello is in, so that the version
   * (compatible version negotiation, RFC 9368 §2.3) and with it our transport parameters are known
   * before TLS writes them into EncryptedExtensions.
   */
  private startServerTls(now: number): boolean {
    const more = this.crypto.get(0).read();
    if (more && more.length > 0) {
      if (this.helloBuf.length + more.length > (this.cfg.maxCryptoBuffer ?? 64 * 1024)) {
        throw new ProtocolViolation('quic', TransportError.CRYPTO_BUFFER_EXCEEDED, 'ClientHello too large');
      }
      const nb = new Uint8Array(this.helloBuf.length + more.length);
      nb.set(this.helloBuf);
      nb.set(more, this.helloBuf.length);
      this.helloBuf = nb;
    }
    const hb = this.helloBuf;
    if (hb.length < 4) return false;
    if (hb[0] !== 1) throw new ProtocolViolation('quic', cryptoError(10), 'first CRYPTO data is not a ClientHello');
    const len = (hb[1]! << 16) | (hb[2]! << 8) | hb[3]!;
    if (hb.length < 4 + len) return false;
    const clientTp = findQuicTransportParams(hb.subarray(0, 4 + len));
    if (clientTp) {
      let info = null;
      try {
        info = decodeTransportParameters(clientTp, 'client').versionInformation;
      } catch {
        info = null; // TLS reports the error with the right alert when it parses them
      }
      const chosen = negotiateVersion(this.version, info, this.supportedVersions);
      if (chosen !== this.version) {
        // Write in the chosen version; keep reading the client's Initials of its original version.
        this.initialReadAlt = this.spaces[0]!.read;
        this.clientOriginalVersion = this.version;
        this.version = chosen;
        const k = initialKeys(this.provider, chosen, this.initialKeyDcid, true);
        this.spaces[0]!.write = k.write;
        this.spaces[0]!.read = k.read;
      }
    }
    const tp = this.localTransportParams();
    this.tlsQuicParams = tp;
    const cfg = this.serverTlsConfig!;
    this.tls = new TlsServer({ ...cfg, provider: this.provider, quic: { transportParameters: tp }, now: cfg.now ?? (() => this.now) });
    const hello = this.helloBuf;
    this.helloBuf = new Uint8Array(0);
    this.tls.receive('initial', hello);
    this.drainTls();
    void now;
    return true;
  }

  private drainTls(): void {
    const tls = this.tls;
    if (!tls) return;
    for (let ev = tls.poll(); ev; ev = tls.poll()) this.onTlsEvent(ev);
    if (!this.peerParams && tls.info.peerTransportParameters) this.applyPeerParams(tls.info.peerTransportParameters);
  }

  private onTlsEvent(ev: TlsEvent): void {
    const now = this.now;
    switch (ev.type) {
      case 'send':
        this.crypto.get(LEVEL_INDEX[ev.level] as 0 | 1 | 2).write(ev.data);
        return;
      case 'secret': {
        if (this.qlog) {
          const who = (ev.direction === 'write') === this.isServer ? 'server' : 'client';
          const kind = ev.level === 'early' ? '0rtt' : ev.level === 'handshake' ? 'handshake' : '1rtt';
          this.qlog({ time: now, name: 'security:key_updated', data: { key_type: `${who}_${kind}_secret`, generation: 0, trigger: 'tls' } });
        }
        const suite = CipherSuites[ev.suite];
        const cipher = { aead: suite.aead, hash: suite.hash };
        const keys = () => PacketKeys.fromSecret(this.provider, cipher, this.version, ev.secret);
        if (ev.level === 'handshake') {
          if (ev.direction === 'read') this.spaces[1]!.read = keys();
          else this.spaces[1]!.write = keys();
          if (this.spaces[1]!.read && this.spaces[1]!.write) this.recovery.setHasHandshakeKeys(now);
        } else if (ev.level === 'early') {
          if (ev.direction === 'write') this.zeroRttWrite = keys();
          else this.zeroRttRead = keys();
        } else {
          if (ev.direction === 'read') this.appReadSecret = { secret: ev.secret, suite: ev.suite };
          else this.appWriteSecret = { secret: ev.secret, suite: ev.suite };
          if (this.appReadSecret && this.appWriteSecret && !this.oneRtt) {
            const rs = CipherSuites[this.appReadSecret.suite];
            const c = { aead: rs.aead, hash: rs.hash };
            this.oneRtt = new OneRttKeys(
              PacketKeys.fromSecret(this.provider, c, this.version, this.appReadSecret.secret),
              PacketKeys.fromSecret(this.provider, c, this.version, this.appWriteSecret.secret),
            );
          }
        }
        return;
      }
      case 'earlyData':
        if (!this.isServer) {
          this.pushEvent({ type: 'earlyData', accepted: ev.accepted });
          if (!ev.accepted) {
            this.recovery.onZeroRttRejected(now);
            this.zeroRttWrite = null;
            // RFC 9001 §4.6.2: the remembered limits no longer hold; the peer's new transport
            // parameters do, even where lower (now, or when they are applied).
            this.zeroRttRejected = true;
            if (this.peerParams) this.streams.restartAfterZeroRttRejected(this.peerParams);
          }
        }
        return;
      case 'handshakeComplete':
        this.onHandshakeComplete(ev.info, now);
        return;
      case 'sessionTicket': {
        const ticket = { ...ev.ticket, transportParameters: this.peerParamsRaw };
        this.pushEvent({ type: 'sessionTicket', ticket });
        return;
      }
      case 'alert':
        // A QUIC rule checked inside TLS (e.g. max_early_data in a ticket) keeps its QUIC code.
        if (ev.error.layer === 'quic') throw ev.error;
        throw new ProtocolViolation('quic', cryptoError(ev.alert), ev.error.message);
    }
  }

  private peerParamsRaw: Uint8Array | null = null;

  private applyPeerParams(raw: Uint8Array): void {
    const p = decodeTransportParameters(raw, this.isServer ? 'client' : 'server');
    const bad = (m: string): never => {
      throw new ProtocolViolation('quic', TransportError.TRANSPORT_PARAMETER_ERROR, m);
    };
    // RFC 9000 §7.3: authenticate the connection IDs used during the handshake.
    if (this.isServer) {
      if (!sameBytes(p.initialSourceConnectionId, this.clientScid)) bad('initial_source_connection_id does not match the client SCID');
      validateClientVersionInformation(p.versionInformation, this.clientOriginalVersion || this.version);
    } else {
      if (!sameBytes(p.originalDestinationConnectionId, this.originalDcid)) bad('original_destination_connection_id mismatch');
      if (!sameBytes(p.initialSourceConnectionId, this.peerScidFirst)) bad('initial_source_connection_id does not match the server SCID');
      if (!sameBytes(p.retrySourceConnectionId, this.retryScid)) bad('retry_source_connection_id mismatch');
      // RFC 9368 §8: a v1 server without version_information counts as Chosen Version 1,
      // Available Versions [1] (servers that predate RFC 9368, e.g. after Version Negotiation).
      const vi = p.versionInformation ?? (this.version === QUIC_V1 ? { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1] } : null);
      validateServerVersionInformation(vi, this.version, this.supportedVersions.filter(isSupportedVersion), this.reactedToVn, this.supportedVersions.filter(isSupportedVersion));
      if (p.statelessResetToken) this.remoteCids.setInitialResetToken(p.statelessResetToken);
    }
    this.peerParams = p;
    this.peerParamsRaw = raw;
    if (this.zeroRttRejected) this.streams.restartAfterZeroRttRejected(p);
    else this.streams.setPeerLimits(p);
    this.recovery.peerMaxAckDelay = p.maxAckDelay;
    const local = this.cfg.maxIdleTimeout ?? 30_000;
    this.idleTimeout = local > 0 && p.maxIdleTimeout > 0 ? Math.min(local, p.maxIdleTimeout) : Math.max(local, p.maxIdleTimeout);
    this.peerDatagramMax = p.maxDatagramFrameSize ?? -1;
    this.checkWritable();
  }

  private onHandshakeComplete(info: HandshakeInfo, now: number): void {
    this.handshakeDone = true;
    this.info = info;
    this.state = 'established';
    if (!this.peerParams && info.peerTransportParameters) this.applyPeerParams(info.peerTransportParameters);
    if (!this.peerParams) throw new ProtocolViolation('quic', cryptoError(109), 'peer sent no quic_transport_parameters');
    this.pushEvent({ type: 'handshakeComplete', info });
    if (this.isServer) {
      // RFC 9001 §4.1.2: the server's handshake is confirmed when it completes.
      this.handshakeDonePending = true;
      if (this.host.newToken) {
        this.lastNewToken = this.host.newToken(this.path.remote.address, now, this.version);
        this.newTokenPending = this.lastNewToken;
      }
      this.confirmHandshake(now);
    }
    this.topUpCids();
    // Not now: we are inside the processing of a packet (shared header/frame state); the buffered
    // packets are replayed once the current datagram is done (RFC 9001 §5.7).
    this.replayPending = true;
  }

  private confirmHandshake(now: number): void {
    if (this.handshakeConfirmed) return;
    this.handshakeConfirmed = true;
    this.armKeepAlive(now);
    this.recovery.setHandshakeConfirmed(now);
    this.discardSpace(0, now);
    this.discardSpace(1, now);
    // After the handshake, use larger datagrams (bounded by what the peer accepts).
    const peerMax = this.peerParams?.maxUdpPayloadSize ?? 1200;
    this.maxDatagram = Math.max(MIN_INITIAL_DATAGRAM, Math.min(this.cfg.maxUdpPayloadSize ?? 1452, peerMax));
    this.pushEvent({ type: 'handshakeConfirmed' });
  }

  private discardSpace(level: number, now: number): void {
    const s = this.spaces[level]!;
    if (s.discarded) return;
    s.discarded = true;
    s.read = null;
    s.write = null;
    // No packet of this level can be read or sent again: its CRYPTO buffers go too.
    this.crypto.discard(level as 0 | 1);
    if (level === 0) this.initialReadAlt = null;
    this.recovery.discardSpace(level as PnSpace, now);
    if (this.qlog) {
      const kind = level === 0 ? 'initial' : 'handshake';
      for (const who of ['client', 'server']) this.qlog({ time: now, name: 'security:key_discarded', data: { key_type: `${who}_${kind}_secret`, trigger: 'tls' } });
    }
  }

  private topUpCids(): void {
    if (!this.handshakeDone || !this.peerParams) return;
    this.localCids.topUp(Math.min(this.peerParams.activeConnectionIdLimit, this.cfg.activeConnectionIdLimit ?? 4, 8), this.localCid.length);
  }

  // ---------------------------------------------------------------------------------------------
  // Paths and migration (RFC 9000 §8.2, §9)

  private onPeerAddressChanged(remote: Address, key: string, now: number): void {
    if (!this.handshakeConfirmed) return; // §9: no migration before the handshake is confirmed
    const back = this.prevPath;
    if (back && back.key === key) {
      // §9.3.2/§9.3.3: packets with higher packet numbers from the last validated address: the
      // unvalidated address (perhaps spoofed by an on-path attacker) is abandoned, and the old
      // path, still validated, with its congestion and RTT state untouched, is used again.
      this.prevPath = null;
      this.path = back;
      this.recovery.setAmplificationBlocked(false, now);
      return;
    }
    // The path to revert to if validation fails is the last VALIDATED one (§9.3.2): a second move
    // before the first is validated keeps it.
    if (this.path.validated) this.prevPath = this.path;
    const from = this.prevPath ?? this.path;
    this.path = this.newPath(remote, false);
    this.path.resetCongestion = remote.address !== from.remote.address;
    this.path.challenge = this.provider.randomBytes(8);
    this.path.challengePending = true;
    this.path.challengeDeadline = now + this.pathValidationTimeout();
    if (this.isServer) this.remoteCids.rotate(); // §9.5: a new CID toward the new path when we have one
    void key;
  }

  /**
   * §9.4: on confirming the peer's ownership of a new address (not on the first packet from it, so
   * that a spoofed or failed migration leaves the validated path's state intact), congestion
   * control and the RTT estimator start over, unless only the port changed (NAT rebinding, where we
   * keep them). Packets sent before that "MUST NOT contribute to congestion control or RTT
   * estimation for the new path": everything outstanding is declared lost and sent again.
   */
  private resetCongestionForNewPath(now: number): void {
    this.rtt.reset();
    this.cc = createCongestionController(this.cfg.congestionControl ?? 'cubic', this.rtt, { maxDatagramSize: this.maxDatagram });
    const old = this.recovery;
    this.recovery = this.makeRecovery();
    this.recovery.peerMaxAckDelay = old.peerMaxAckDelay;
    this.recovery.setHandshakeConfirmed(now);
    this.recovery.discardSpace(PnSpace.initial, now);
    this.recovery.discardSpace(PnSpace.handshake, now);
    // ACKs of packets sent before the reset may still arrive: they are not "unsent" packets.
    this.recovery.largestSent[PnSpace.application] = old.largestSent[PnSpace.application]!;
    this.pacer = new Pacer(this.cc, this.rtt);
    const n = old.outstanding(PnSpace.application);
    if (n > 0) {
      const infos: (SentInfo | undefined)[] = new Array(n); // rare event: allocation is fine here
      const m = old.oldestOutstanding(PnSpace.application, n, infos);
      for (let i = 0; i < m; i++) if (infos[i]) this.onPacketLost(PnSpace.application, infos[i]);
    }
    old.discardSpace(PnSpace.application, now);
  }

  private onPathResponse(f: Frame, now: number): void {
    const p = this.path;
    if (!p.challenge) return;
    for (let i = 0; i < 8; i++) if (f.buf[f.dataOffset + i] !== p.challenge[i]) return;
    p.validated = true;
    p.challenge = null;
    p.challengePending = false;
    p.challengeDeadline = Infinity;
    p.challengeRetry = Infinity;
    this.prevPath = null;
    if (p.resetCongestion) {
      p.resetCongestion = false;
      this.resetCongestionForNewPath(now);
    }
    this.recovery.setAmplificationBlocked(false, now);
    this.pushEvent({ type: 'pathChanged', remote: p.remote });
  }

  migrate(now: number): boolean {
    if (this.isServer || !this.handshakeConfirmed || this.closedFlag || this.state !== 'established') return false;
    if (this.peerParams?.disableActiveMigration) return false;
    if (!this.remoteCids.rotate()) return false;
    this.now = Math.max(this.now, now);
    this.path.challenge = this.provider.randomBytes(8);
    this.path.challengePending = true;
    this.path.challengeDeadline = now + this.pathValidationTimeout();
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Send

  private wakeAt = Infinity;

  pollTransmit(now: number): Transmit | null {
    if (this.closedFlag) return null;
    this.wakeAt = Infinity;
    this.now = Math.max(this.now, now);
    try {
      if (this.replayPending) this.replayUndecryptable(now);
      const t = this.buildDatagram(now);
      if (this.state === 'established') {
        // RFC 9002 §7.8: the window does not grow while the sender is application- or flow-control-
        // limited: nothing (more) to send although the window has room and pacing does not hold
        // it back. A full window ends that.
        const room = this.cc.available() >= this.maxDatagram;
        if (!t) {
          if (room && this.pacingDeadline === Infinity) this.cc.appLimited = true;
        } else if (!room) this.cc.appLimited = false;
      }
      if (t) this.afterInput(now);
      return t;
    } catch (e) {
      SEND_POOL.release(); // the datagram being built (if any) is abandoned
      this.fail(e, now);
      try {
        return this.buildDatagram(now);
      } catch {
        SEND_POOL.release();
        this.closedFlag = true;
        return null;
      }
    }
  }

  /**
   * The smallest datagram worth building: on a new, unvalidated path after the handshake, a short
   * header packet with a PATH_CHALLENGE (1 + CID + 4-byte packet number + 9 + tag), so that a
   * budget of a few dozen bytes still carries the challenge that can validate the path; else 64.
   */
  private smallestUsefulDatagram(): number {
    return this.path.validated || !this.handshakeConfirmed ? 64 : 1 + this.remoteCids.cid.length + 4 + 9 + AEAD_TAG;
  }

  /**
   * §8.2.4: path validation gives up after three times the larger of the current PTO and the PTO
   * of a new path computed with kInitialRtt (so that losing one PATH_CHALLENGE or PATH_RESPONSE
   * does not fail it).
   */
  private pathValidationTimeout(): number {
    const initialRtt = this.cfg.initialRtt ?? 333;
    const newPathPto = initialRtt + 4 * (initialRtt / 2) + this.recovery.peerMaxAckDelay;
    return 3 * Math.max(this.recovery.ptoPeriod(), newPathPto);
  }

  private amplificationBudget(): number {
    if (this.path.validated) return Infinity;
    return 3 * this.path.bytesReceived - this.path.bytesSent;
  }

  private buildDatagram(now: number): Transmit | null {
    if (this.state === 'draining' || this.state === 'closed') return null;

    // PATH_RESPONSE to another address goes in its own datagram (§8.2.2).
    if (this.pathResponses.length > 0 && this.oneRtt && this.handshakeDone) {
      const pr = this.pathResponses[0]!;
      if (addressKey(pr.remote) !== this.path.key) {
        this.pathResponses.shift();
        return this.buildProbeDatagram(pr.remote, pr.data, pr.received, now);
      }
    }

    let budget = Math.min(this.maxDatagram, this.amplificationBudget());
    if (budget < this.smallestUsefulDatagram()) {
      if (this.isServer && !this.path.validated) this.recovery.setAmplificationBlocked(true, now);
      return null;
    }
    const closing = this.state === 'closing';
    if (closing && !this.closeSendPending) return null;

    const probes = this.recovery.probesNeeded(0) + this.recovery.probesNeeded(1) + this.recovery.probesNeeded(2);
    let canSendData = probes > 0 || this.cc.available() >= this.maxDatagram || (this.cc.bytesInFlight === 0);
    // A new, not yet validated peer address (migration / NAT rebinding): the anti-amplification
    // budget (3x received) is kept for PATH_CHALLENGE/PATH_RESPONSE and their retries, and PTO
    // probes are bare PINGs (each elicits an ACK that adds budget), rather than spending it on data
    // (RFC 9000 §8.2.1, §9.3); data resumes as soon as the path is validated.
    this.pathProbeOnly = !this.path.validated && this.handshakeConfirmed;
    // A PTO on such a path sends the PATH_CHALLENGE again rather than a bare PING: the same bytes
    // of budget, and the probe that validates the path (a lost challenge is not waited out).
    if (this.pathProbeOnly && this.path.challenge && this.recovery.probesNeeded(2) > 0) this.path.challengePending = true;
    if (canSendData && probes === 0 && !closing) {
      const wait = this.pacer.timeUntilSend(now, this.maxDatagram);
      if (wait > 0) {
        // At least PACING_STEP ahead: with epoch-millisecond clocks a tiny wait rounds to `now`
        // itself (float resolution ~2e-4 ms) and the timer would fire without refilling the bucket.
        this.pacingDeadline = now + Math.max(wait, PACING_STEP);
        canSendData = false;
      }
    }
    // Packets are built and sealed in place in the shared datagram pool; the datagram handed out
    // is an exact-size view of it, never written again (valid for as long as the caller keeps it).
    const buf = SEND_POOL.reserve(budget);
    let slot = 0;
    let off: number;
    let hasInitialAckEliciting = false;
    let hasInitial = false;
    let last: PendingSeal | null = null;
    let anyAckEliciting = false;
    for (let level = 0; level < 3; level++) {
      const sp = this.spaces[level]!;
      if (sp.discarded) continue;
      let keys: PacketKeys | null = level === 2 ? (this.oneRtt ? this.oneRtt.write : null) : sp.write;
      let zeroRtt = false;
      if (level === 2 && !keys && !this.isServer && this.zeroRttWrite && !this.handshakeDone) {
        keys = this.zeroRttWrite;
        zeroRtt = true;
      }
      if (!keys) continue;
      if (level === 2 && this.isServer && !this.handshakeDone && !this.oneRtt) continue;
      // The next packet starts where the previous one ends once sealed (padding for the sample + tag).
      const start = last ? last.payloadEnd + last.trailer : 0;
      if (budget - start < 48) break;
      const p = this.buildPacket(buf, start, budget, level, keys, zeroRtt, canSendData, closing, now, this.seals[slot]!);
      if (!p) continue;
      if (last) this.seal(buf, last, 0);
      last = p;
      slot ^= 1;
      if (p.ackEliciting) anyAckEliciting = true;
      if (level === 0 && p.ackEliciting) hasInitialAckEliciting = true;
      if (level === 0) hasInitial = true;
      if (level === 2) break; // a short header packet extends to the end of the datagram
    }
    if (!last) {
      SEND_POOL.release(buf);
      if (closing) this.closeSendPending = false;
      return null;
    }
    // §14.1: datagrams carrying ack-eliciting Initial packets are at least 1200 bytes; so are
    // datagrams with PATH_CHALLENGE/PATH_RESPONSE (§8.2.1) when the budget allows.
    let minEnd = 0;
    if (hasInitialAckEliciting || (!this.isServer && hasInitial)) minEnd = Math.min(MIN_INITIAL_DATAGRAM, budget);
    // §8.2.1: padded to 1200 unless the path's anti-amplification limit does not permit it; then
    // unpadded (padding part-way proves nothing and would spend the budget that retries need).
    if (last.pathProbe && budget >= MIN_INITIAL_DATAGRAM) minEnd = MIN_INITIAL_DATAGRAM;
    off = this.seal(buf, last, minEnd);
    if (closing) this.closeSendPending = false;
    this.path.bytesSent += off;
    if (anyAckEliciting) {
      this.pacer.onPacketSent(now, off);
      if (this.handshakeConfirmed) this.armKeepAlive(now);
      if (this.lastAckElicitingSent < 0) {
        this.lastAckElicitingSent = now;
        if (this.idleTimeout > 0) this.idleDeadline = now + this.effectiveIdle();
      }
    }
    return { datagram: SEND_POOL.commit(buf, off), remote: this.path.remote };
  }

  /**
   * A PATH_RESPONSE to an address other than the current path (a probe from it, §9.1), alone in its
   * datagram. §8.2.2: padded to 1200 bytes unless that exceeds the anti-amplification limit toward
   * that address (3x the datagram that carried the PATH_CHALLENGE: an unpadded probe gets an
   * unpadded answer).
   */
  private buildProbeDatagram(remote: Address, response: Uint8Array, received: number, now: number): Transmit | null {
    const keys = this.oneRtt!.write;
    const buf = new Uint8Array(MIN_INITIAL_DATAGRAM);
    const sp = this.spaces[2]!;
    const pn = sp.nextPn++;
    const pnLen = packetNumberLength(pn, this.recovery.largestAcked[2]!);
    const dcid = this.remoteCids.cid;
    const pnOffset = writeShortHeader(buf, 0, dcid, pn, pnLen, this.oneRtt!.keyPhase);
    let o = pnOffset + pnLen;
    o = writeVarint(buf, o, FrameType.PATH_RESPONSE);
    buf.set(response, o);
    o += 8;
    const end = sealPacket(keys, buf, 0, pnOffset, pnLen, 0, o, pn, Math.min(MIN_INITIAL_DATAGRAM, 3 * received));
    this.oneRtt!.onPacketSent(pn);
    this.recovery.onPacketSent(PnSpace.application, pn, now, end, true, true, undefined);
    this.sentPackets++;
    this.countOffPath(addressKey(remote), 0, end);
    if (this.qlog) {
      const frames = end > o + 16 ? [{ frame_type: 'path_response' }, { frame_type: 'padding' }] : [{ frame_type: 'path_response' }];
      this.qlog({ time: now, name: 'transport:packet_sent', data: { header: { packet_type: '1RTT', packet_number: pn }, raw: { length: end }, frames } });
    }
    return { datagram: buf.subarray(0, end), remote };
  }

  /** The keep-alive PING is due `keepAliveInterval` after the last ack-eliciting packet (off when 0). */
  private armKeepAlive(now: number): void {
    const every = this.cfg.keepAliveInterval ?? 0;
    if (every > 0) this.keepAliveAt = now + every;
  }

  private countOffPath(key: string, rx: number, tx: number): void {
    if (key !== this.offPathKey) {
      this.offPathKey = key;
      this.offPathRx = this.offPathTx = 0;
    }
    this.offPathRx += rx;
    this.offPathTx += tx;
  }

  private seal(buf: Uint8Array, p: PendingSeal, minEnd: number): number {
    const frames = this.qlog ? this.qlogPlainFrames(buf, p) : null;
    const end = sealPacket(p.keys!, buf, p.headerOffset, p.pnOffset, p.pnLength, p.lengthSize, p.payloadEnd, p.pn, Math.max(minEnd, 0));
    const size = end - p.headerOffset;
    if (p.level === 2 && !p.zeroRtt) this.oneRtt!.onPacketSent(p.pn);
    let info: SentInfo | undefined = p.info ?? undefined;
    if (info && info.n === 0) {
      this.releaseInfo(info);
      info = undefined;
    }
    this.recovery.onPacketSent(p.level as PnSpace, p.pn, this.now, size, p.ackEliciting, p.inFlight, info, p.zeroRtt);
    this.sentPackets++;
    if (this.qlog) this.qlog({ time: this.now, name: 'transport:packet_sent', data: { header: { packet_type: p.zeroRtt ? '0RTT' : LEVEL_PACKET_TYPES[p.level], packet_number: p.pn }, raw: { length: size }, frames } });
    // The slot is reused by the next packet: it must not keep discarded keys or records alive.
    p.keys = null;
    p.info = null;
    // (The server discards Initial keys when it first processes a Handshake packet, not when sending.)
    if (!this.isServer && p.level === 1) this.discardSpace(0, this.now); // RFC 9001 §4.9.1
    return end;
  }

  private buildPacket(
    buf: Uint8Array,
    off: number,
    limit: number,
    level: number,
    keys: PacketKeys,
    zeroRtt: boolean,
    canSendData: boolean,
    closing: boolean,
    now: number,
    out: PendingSeal,
  ): PendingSeal | null {
    const sp = this.spaces[level]!;
    const pn = sp.nextPn;
    const pnLen = packetNumberLength(pn, this.recovery.largestAcked[level]!);
    const dcid = this.remoteCids.cid;
    let pnOffset: number;
    let lengthSize = 0;
    const type = level === 0 ? PacketType.Initial : level === 1 ? PacketType.Handshake : zeroRtt ? PacketType.ZeroRtt : PacketType.OneRtt;
    if (type === PacketType.OneRtt) {
      pnOffset = writeShortHeader(buf, off, dcid, pn, pnLen, this.oneRtt!.keyPhase);
    } else {
      lengthSize = 2;
      const token = type === PacketType.Initial && !this.isServer ? this.token : null;
      const hs = longHeaderSize(type, dcid.length, this.localCid.length, token ? token.length : 0, pnLen, lengthSize);
      if (off + hs + 24 > limit) return null;
      pnOffset = writeLongHeader(buf, off, type, this.version, dcid, this.localCid, token, pn, pnLen, lengthSize);
    }
    const payloadStart = pnOffset + pnLen;
    const end = limit - AEAD_TAG;
    let o = payloadStart;
    if (o + 8 > end) return null;
    const info = this.takeInfo();
    let ackEliciting = false;
    let inFlight = false;
    let pathProbe = false;

    if (closing) {
      o = this.writeClose(buf, o, end, level);
      inFlight = true;
    } else {
      // RFC 9000 §13.2.1: an ACK goes out on its own only when due (ack-eliciting packets arrived
      // and the threshold, reordering or max_ack_delay say so); otherwise it rides along with
      // ack-eliciting frames. Never ACK-only in answer to ACK-only packets (no ping-pong).
      const rp = sp.received;
      let ackN = 0;
      let ackSize = 0;
      let ackDelayField = 0;
      // Client, Handshake space, until its handshake completes: its ACKs are the server's only way
      // to learn which parts of its flight arrived (and to declare the rest lost, RFC 9002 §6.1,
      // instead of waiting for its PTO, which backs off). An ACK-only packet is not retransmitted
      // when lost, so ACKs here go with a PING (ack-eliciting: our PTO repeats it) and every packet
      // of ours in this space carries the current ACK frame.
      const reliableAck = !this.isServer && level === 1 && !this.handshakeDone;
      if ((rp.hasPendingAck || reliableAck) && !zeroRtt) {
        ackN = rp.fillIntervals(this.ackScratch, 32);
        if (ackN > 0) {
          ackDelayField = encodeAckDelay(rp.ackDelay(now), level === 2 ? this.cfg.ackDelayExponent ?? 3 : 3);
          ackSize = ackFrameSize(this.ackScratch, ackN, ackDelayField, null);
          if (o + ackSize > end) ackSize = 0;
        }
      }
      const ackDue = ackSize > 0 && rp.wantAckNow(now);
      const fend = end - ackSize;
      const probe = this.recovery.probesNeeded(level as PnSpace) > 0 || (level === 0 && this.initialSpeedUp);
      if (level === 0) this.initialSpeedUp = false;
      // Initial/Handshake CRYPTO data does not wait for the congestion window (a TLS flight, a few
      // packets at most, still within the anti-amplification limit): a client Finished declared
      // lost while 1-RTT data fills the window, which the server cannot acknowledge before it has
      // the Finished, would otherwise never go out again (RFC 9002 §7 lets a sender entering
      // recovery send regardless of the window).
      const handshakeData = level < 2 && this.crypto.get(level as 0 | 1).hasPending();
      // §14.1: a server pads every datagram with an ack-eliciting Initial to 1200 bytes; when the
      // anti-amplification limit leaves less, its Initial packets carry only ACKs until it grows.
      const initialAckOnly = level === 0 && this.isServer && limit < MIN_INITIAL_DATAGRAM;
      if ((canSendData || probe || handshakeData) && !initialAckOnly) {
        const before = o;
        // CRYPTO
        if (!zeroRtt) o = this.writeCrypto(buf, o, fend, level, info);
        if (level === 2) {
          o = this.writeAppFrames(buf, o, fend, info, zeroRtt, now);
          pathProbe = this.wrotePathProbe;
        }
        if (o > before) ackEliciting = true;
        if (!ackEliciting && probe && !this.pathProbeOnly && this.writeProbeRetransmission(level, info)) {
          // Nothing new: the probe carries the oldest unacknowledged data again (RFC 9002 §6.2.4).
          if (!zeroRtt) o = this.writeCrypto(buf, o, fend, level, info);
          if (level === 2) o = this.writeAppFrames(buf, o, fend, info, zeroRtt, now);
          if (o > before) ackEliciting = true;
        }
        if (!ackEliciting && (probe || (level === 2 && this.pingPending))) {
          if (o + 1 <= fend) {
            buf[o++] = FrameType.PING;
            ackEliciting = true;
            if (level === 2) this.pingPending = false;
          }
        }
      } else if (level === 2 && !zeroRtt && this.pathFramesDue()) {
        // Path validation does not wait for the congestion window (a NAT rebinding in the middle of
        // a transfer finds it full, of packets the old address may never acknowledge): the peer's
        // new address is challenged, or its challenge answered, in the first packet sent to it
        // (RFC 9000 §9.3; the interop runner's rebind checks look at exactly that packet). Still
        // within the anti-amplification budget of the new path (§8.2.1).
        const before = o;
        o = this.writePathFrames(buf, o, fend, info);
        if (o > before) {
          ackEliciting = true;
          pathProbe = true;
        }
      }
      if (reliableAck && ackDue && !ackEliciting && o + 1 <= fend) {
        buf[o++] = FrameType.PING;
        ackEliciting = true;
      }
      if (ackSize > 0 && (ackDue || ackEliciting)) {
        o = writeAckFrame(buf, o, this.ackScratch, ackN, ackDelayField, null);
        info.add(R_ACK, this.ackScratch[0]!);
        rp.onAckSent();
      }
      inFlight = ackEliciting;
    }
    if (o === payloadStart) {
      this.releaseInfo(info);
      return null;
    }
    sp.nextPn++;
    const payloadEnd = o;
    out.keys = keys;
    out.level = level;
    out.zeroRtt = zeroRtt;
    out.headerOffset = off;
    out.pnOffset = pnOffset;
    out.pnLength = pnLen;
    out.lengthSize = lengthSize;
    out.payloadEnd = payloadEnd;
    out.pn = pn;
    out.ackEliciting = ackEliciting;
    out.inFlight = inFlight;
    out.info = info;
    out.pathProbe = pathProbe;
    out.trailer = AEAD_TAG + Math.max(0, pnOffset + 4 - payloadEnd);
    return out;
  }

  /** PTO with nothing new to send: re-queue the oldest unacknowledged data of the space (RFC 9002 §6.2.4). */
  private writeProbeRetransmission(level: number, info: SentInfo): boolean {
    // Handshake spaces: the CRYPTO ranges of up to 8 outstanding packets go out again (they are
    // small, and resending only the oldest packet stalls a lossy handshake when that one already
    // arrived); the application space: one packet's data. Each probe takes the oldest packets no
    // probe has repeated yet, so that probes walk through everything outstanding: a lost packet
    // behind older ones whose ACKs keep getting lost is not starved (seen with ngtcp2's client
    // under 30% loss: an HTTP response never sent again).
    const n = this.recovery.probeCandidates(level as PnSpace, level < 2 ? PROBE_HANDSHAKE_PACKETS : 1, this.probeScratch);
    let any = false;
    for (let j = 0; j < n; j++) {
      const old = this.probeScratch[j];
      this.probeScratch[j] = undefined;
      if (!old) continue;
      for (let i = 0; i < old.n; i++) {
        // The frames a probe repeats (RFC 9002 §6.2.4): handshake and stream data, and HANDSHAKE_DONE,
        // without which the client cannot confirm the handshake (seen against ngtcp2 when the
        // server's first 1-RTT packet was lost).
        const k = old.recs[i * 5]!;
        if ((k === R_CRYPTO || k === R_STREAM || k === R_HANDSHAKE_DONE) && this.requeue(old.recs, i)) any = true;
      }
    }
    void info;
    return any;
  }


  /** qlog: the frames of a built packet (decoded from its plaintext before sealing). */
  private qlogPlainFrames(buf: Uint8Array, p: PendingSeal): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const f = new Frame();
    const type = p.level === 0 ? PacketType.Initial : p.level === 1 ? PacketType.Handshake : p.zeroRtt ? PacketType.ZeroRtt : PacketType.OneRtt;
    try {
      for (let o = p.pnOffset + p.pnLength; o < p.payloadEnd; ) {
        o = decodeFrame(buf, o, p.payloadEnd, type, f);
        out.push(qlogFrame(f));
      }
    } catch {
      out.push({ frame_type: 'unknown' });
    }
    return out;
  }

  /** qlog recovery:metrics_updated after an ACK. */
  private qlogMetrics(now: number): void {
    const r = this.rtt;
    this.qlog!({
      time: now,
      name: 'recovery:metrics_updated',
      data: {
        min_rtt: Number.isFinite(r.minRtt) ? r.minRtt : undefined,
        smoothed_rtt: r.smoothedRtt,
        latest_rtt: r.latestRtt,
        rtt_variance: r.rttvar,
        congestion_window: this.cc.window,
        bytes_in_flight: this.cc.bytesInFlight,
        ssthresh: Number.isFinite(this.cc.ssthresh) ? this.cc.ssthresh : undefined,
      },
    });
  }

  private writeCrypto(buf: Uint8Array, o: number, end: number, level: number, info: SentInfo): number {
    const cs = this.crypto.get(level as 0 | 1 | 2);
    const ch = this.chunk;
    let lowest = Infinity;
    while (cs.hasPending()) {
      const room = end - o;
      const max = maxCryptoFrameData(cs.send.sentOffset, room);
      if (max <= 0) break;
      if (!cs.nextChunk(max, ch) || ch.length === 0) break;
      const hdr = cryptoFrameHeaderSize(ch.offset, ch.length);
      if (o + hdr + ch.length > end) {
        cs.onLost(ch.offset, ch.length);
        break;
      }
      o = writeCryptoFrameHeader(buf, o, ch.offset, ch.length);
      cs.copy(ch.offset, ch.length, buf, o);
      o += ch.length;
      info.add(R_CRYPTO, level, ch.offset, ch.length);
      if (ch.offset < lowest) lowest = ch.offset;
    }
    if (level === 0 && !this.isServer && lowest > 0 && lowest !== Infinity) o = this.writeClientHelloHead(buf, o, end, lowest, info);
    return o;
  }

  /**
   * A ClientHello larger than one datagram (e.g. with an X25519MLKEM768 key share) is sent as two
   * Initial packets, and the server can do nothing until it has the first bytes: some servers
   * (ngtcp2) even answer a first Initial whose CRYPTO data does not start at offset 0 with a Retry.
   * The room that padding would fill in the packet with the ClientHello's later part (§14.1: 1200
   * bytes) carries the start of the ClientHello again (RFC 9000 §19.6: CRYPTO data may be sent
   * more than once), so the server gets its first bytes if either datagram arrives. Only while
   * nothing of the ClientHello is acknowledged and no ServerHello came (no Handshake keys): later
   * datagrams have better use for the room (coalesced Handshake packets).
   */
  private writeClientHelloHead(buf: Uint8Array, o: number, end: number, lowest: number, info: SentInfo): number {
    const cs = this.crypto.get(0);
    if (cs.hasPending() || cs.send.ackedPrefix > 0 || this.spaces[1]!.write) return o;
    const n = Math.min(maxCryptoFrameData(0, end - o), lowest);
    if (n < 64) return o;
    o = writeCryptoFrameHeader(buf, o, 0, n);
    cs.copy(0, n, buf, o);
    o += n;
    info.add(R_CRYPTO, 0, 0, n);
    return o;
  }

  private wrotePathProbe = false;
  /** Sending on an unvalidated new path: only path probes, ACKs and PINGs (see buildDatagram). */
  private pathProbeOnly = false;

  /** Path validation frames due: PATH_RESPONSE to the current path, PATH_CHALLENGE for it. */
  private pathFramesDue(): boolean {
    return (this.path.challengePending && !!this.path.challenge) || (this.pathResponses.length > 0 && addressKey(this.pathResponses[0]!.remote) === this.path.key);
  }

  /** PATH_RESPONSE on the current path, PATH_CHALLENGE for the current path. */
  private writePathFrames(buf: Uint8Array, o: number, end: number, info: SentInfo): number {
    while (this.pathResponses.length > 0 && end - o >= 9 && addressKey(this.pathResponses[0]!.remote) === this.path.key) {
      const pr = this.pathResponses.shift()!;
      o = writeVarint(buf, o, FrameType.PATH_RESPONSE);
      buf.set(pr.data, o);
      o += 8;
    }
    if (this.path.challengePending && this.path.challenge && end - o >= 9) {
      o = writeVarint(buf, o, FrameType.PATH_CHALLENGE);
      buf.set(this.path.challenge, o);
      o += 8;
      this.path.challengePending = false;
      // Sent again if the packet is lost, or if no answer came within 2 PTO (the PATH_RESPONSE may be lost).
      this.path.challengeRetry = this.now + 2 * this.recovery.ptoPeriod();
      info.add(R_PATH_CHALLENGE);
    }
    return o;
  }

  private writeAppFrames(buf: Uint8Array, o: number, end: number, info: SentInfo, zeroRtt: boolean, now: number): number {
    let pathProbe = false;
    if (!zeroRtt) {
      if (this.handshakeDonePending && this.isServer && end - o >= 1) {
        buf[o++] = FrameType.HANDSHAKE_DONE;
        info.add(R_HANDSHAKE_DONE);
        this.handshakeDonePending = false;
      }
      const before = o;
      o = this.writePathFrames(buf, o, end, info);
      if (o > before) pathProbe = true;
      if (this.pathProbeOnly) {
        this.wrotePathProbe = pathProbe;
        return o;
      }
      if (this.newTokenPending && !this.isServer) this.newTokenPending = null;
      if (this.newTokenPending) {
        const t = this.newTokenPending;
        const size = 1 + varintLength(t.length) + t.length;
        if (end - o >= size) {
          o = writeVarint(buf, o, FrameType.NEW_TOKEN);
          o = writeVarint(buf, o, t.length);
          buf.set(t, o);
          o += t.length;
          info.add(R_NEW_TOKEN);
          this.newTokenPending = null;
        }
      }
    }
    // Flow control updates.
    const md = end - o >= 9 ? this.streams.pollMaxData(now) : -1;
    if (md >= 0) {
      o = writeSimpleFrame(buf, o, FrameType.MAX_DATA, md);
      info.add(R_MAX_DATA, md);
    }
    o = this.writeStreamLimits(buf, o, end, info, true);
    o = this.writeStreamLimits(buf, o, end, info, false);
    // Per-stream control frames: only the streams marked dirty (no scan over all streams).
    if (this.recvCtrlDirty.size > 0) {
      for (const id of this.recvCtrlDirty) {
        if (end - o < 17) break;
        const s = this.streams.recvStreams.get(id);
        if (!s) {
          this.recvCtrlDirty.delete(id);
          continue;
        }
        const v = s.pollMaxStreamData(now);
        if (v >= 0) {
          o = writeStreamValueFrame(buf, o, FrameType.MAX_STREAM_DATA, id, v);
          info.add(R_MAX_STREAM_DATA, id, v);
        }
        if (s.wantsStopSending && end - o >= 17) {
          o = writeStreamValueFrame(buf, o, FrameType.STOP_SENDING, id, s.stopSendingCode);
          s.onStopSendingSent();
          info.add(R_STOP_SENDING, id);
        }
        if (!s.wantsStopSending && !s.flow.wantsUpdate) this.recvCtrlDirty.delete(id);
      }
    }
    const db = this.streams.connSend.blockedFrameWanted();
    if (db >= 0 && end - o >= 9) {
      o = writeSimpleFrame(buf, o, FrameType.DATA_BLOCKED, db);
      this.streams.connSend.onBlockedSent();
      info.add(R_DATA_BLOCKED, db);
    }
    if (this.sendCtrlDirty.size > 0) {
      for (const id of this.sendCtrlDirty) {
        const s = this.streams.sendStreams.get(id);
        if (!s) {
          this.sendCtrlDirty.delete(id);
          continue;
        }
        if (s.wantsReset) {
          const size = 1 + varintLength(id) + varintLength(s.resetCode) + varintLength(s.finalSize);
          if (end - o < size) break;
          o = writeVarint(buf, o, FrameType.RESET_STREAM);
          o = writeVarint(buf, o, id);
          o = writeVarint(buf, o, s.resetCode);
          o = writeVarint(buf, o, s.finalSize);
          s.onResetSent();
          info.add(R_RESET_STREAM, id);
        }
        const b = s.isReset ? -1 : s.credit.blockedFrameWanted();
        if (b >= 0) {
          if (end - o < 17) break;
          o = writeStreamValueFrame(buf, o, FrameType.STREAM_DATA_BLOCKED, id, b);
          s.credit.onBlockedSent();
          info.add(R_STREAM_DATA_BLOCKED, id, b);
        }
        // Keep watching while unsent data may hit the stream's credit.
        if (!s.wantsReset && (s.isReset || s.sentOffset >= s.writeOffset)) this.sendCtrlDirty.delete(id);
      }
    }
    if (!zeroRtt) {
      while (this.localCids.pendingNew.length > 0 && end - o >= 1 + 8 + 8 + 1 + 20 + 16) {
        const c = this.localCids.pendingNew.shift()!;
        if (!this.localCids.isActive(c.cid)) continue;
        o = writeVarint(buf, o, FrameType.NEW_CONNECTION_ID);
        o = writeVarint(buf, o, c.seq);
        o = writeVarint(buf, o, this.localCids.retirePriorTo);
        buf[o++] = c.cid.length;
        buf.set(c.cid, o);
        o += c.cid.length;
        buf.set(c.resetToken, o);
        o += 16;
        info.add(R_NEW_CID, c.seq);
      }
      while (this.remoteCids.pendingRetire.length > 0 && end - o >= 9) {
        const seq = this.remoteCids.pendingRetire.shift()!;
        o = writeSimpleFrame(buf, o, FrameType.RETIRE_CONNECTION_ID, seq);
        info.add(R_RETIRE_CID, seq);
      }
    }
    // DATAGRAM frames (not retransmitted).
    while (this.datagramsOut.length > 0) {
      const d = this.datagramsOut[0]!;
      const size = 1 + varintLength(d.length) + d.length;
      if (end - o < size) break;
      this.datagramsOut.shift();
      o = writeVarint(buf, o, FrameType.DATAGRAM_LEN);
      o = writeVarint(buf, o, d.length);
      buf.set(d, o);
      o += d.length;
    }
    // STREAM data, round robin.
    const ch = this.chunk;
    for (let guard = 0; guard < 64; guard++) {
      const room = end - o;
      if (room < 24) break;
      const id = this.streams.nextSendable();
      if (id < 0) break;
      const s = this.streams.sendStreams.get(id)!;
      const max = maxStreamFrameData(id, s.sentOffset, room, true);
      if (max <= 0 && !s.finished) break;
      if (!this.streams.nextChunk(id, Math.max(0, max), ch)) break;
      const withLength = true;
      const hsz = streamFrameHeaderSize(id, ch.offset, ch.length, withLength);
      if (hsz + ch.length > room) {
        s.onLost(ch.offset, ch.length, ch.fin);
        break;
      }
      o = writeStreamFrameHeader(buf, o, id, ch.offset, ch.length, ch.fin, withLength);
      s.copy(ch.offset, ch.length, buf, o);
      o += ch.length;
      info.add(R_STREAM, id, ch.offset, ch.length, ch.fin ? 1 : 0);
      if (this.writeBlocked.size > 0 && s.pollWritable()) {
        this.writeBlocked.delete(id);
        this.pushEvent({ type: 'streamWritable', id });
      }
    }
    this.wrotePathProbe = pathProbe;
    return o;
  }

  /** MAX_STREAMS / STREAMS_BLOCKED for one stream type. */
  private writeStreamLimits(buf: Uint8Array, o: number, end: number, info: SentInfo, bidi: boolean): number {
    if (end - o < 9) return o;
    const ms = this.streams.pollMaxStreams(bidi);
    if (ms >= 0) {
      o = writeSimpleFrame(buf, o, bidi ? FrameType.MAX_STREAMS_BIDI : FrameType.MAX_STREAMS_UNI, ms);
      info.add(R_MAX_STREAMS, bidi ? 1 : 0, ms);
    }
    const sb = this.streams.streamsBlockedWanted(bidi);
    if (sb >= 0 && end - o >= 9) {
      o = writeSimpleFrame(buf, o, bidi ? FrameType.STREAMS_BLOCKED_BIDI : FrameType.STREAMS_BLOCKED_UNI, sb);
      info.add(R_STREAMS_BLOCKED, bidi ? 1 : 0, sb);
    }
    return o;
  }

  private writeClose(buf: Uint8Array, o: number, end: number, level: number): number {
    const c = this.closeFrame!;
    // §10.2.3: an application close in Initial/Handshake packets becomes APPLICATION_ERROR.
    const app = c.application && level === 2;
    const code = c.application && !app ? TransportError.APPLICATION_ERROR : c.code;
    const reasonBytes = UTF8_ENC.encode(app || !c.application ? c.reason : '').subarray(0, 512);
    const size = 1 + varintLength(code) + (app ? 0 : varintLength(c.frameType)) + varintLength(reasonBytes.length) + reasonBytes.length;
    const r = end - o >= size ? reasonBytes : new Uint8Array(0);
    o = writeVarint(buf, o, app ? FrameType.CONNECTION_CLOSE_APP : FrameType.CONNECTION_CLOSE);
    o = writeVarint(buf, o, code);
    if (!app) o = writeVarint(buf, o, c.application ? 0 : c.frameType);
    o = writeVarint(buf, o, r.length);
    buf.set(r, o);
    return o + r.length;
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  nextTimeout(): number | null {
    if (this.closedFlag) return null;
    let t = Infinity;
    if (this.state === 'closing' || this.state === 'draining') return this.closeDeadline;
    const r = this.recovery.nextTimeout();
    if (r !== null && r < t) t = r;
    const a = this.spaces[2]!.received.ackTimeout();
    if (a !== null && a < t && (this.oneRtt !== null)) t = a;
    if (this.idleDeadline < t) t = this.idleDeadline;
    if (this.keyDiscardDeadline < t) t = this.keyDiscardDeadline;
    if (this.pacingDeadline < t) t = this.pacingDeadline;
    if (this.path.challengeDeadline < t) t = this.path.challengeDeadline;
    if (this.path.challengeRetry < t) t = this.path.challengeRetry;
    if (this.wakeAt < t) t = this.wakeAt;
    if (this.keepAliveAt < t) t = this.keepAliveAt;
    if (this.zeroRttDiscardAt < t) t = this.zeroRttDiscardAt;
    return t === Infinity ? null : t;
  }

  handleTimeout(now: number): void {
    if (this.closedFlag) return;
    this.now = Math.max(this.now, now);
    try {
      if (this.state === 'closing' || this.state === 'draining') {
        if (now >= this.closeDeadline) this.finish();
        return;
      }
      if (now >= this.idleDeadline) {
        const kind = this.handshakeDone ? 'idle' : 'handshake-timeout';
        this.closeInfo = { code: 0, frameType: 0, reason: kind === 'idle' ? 'idle timeout' : 'handshake timed out', application: false, remote: false, kind };
        this.pushEvent({ type: 'closed', info: this.closeInfo });
        this.finish();
        return;
      }
      if (now >= this.pacingDeadline) this.pacingDeadline = Infinity;
      if (now >= this.wakeAt) this.wakeAt = Infinity;
      if (now >= this.zeroRttDiscardAt) {
        this.zeroRttDiscardAt = Infinity;
        this.zeroRttRead = null;
      }
      if (now >= this.keepAliveAt) {
        this.keepAliveAt = Infinity; // re-armed when the PING (ack-eliciting) goes out
        if (this.state === 'established') this.pingPending = true;
      }
      if (now >= this.keyDiscardDeadline) {
        this.keyDiscardDeadline = Infinity;
        this.oneRtt?.discardPrevious();
      }
      if (now >= this.path.challengeRetry) {
        this.path.challengeRetry = Infinity;
        if (this.path.challenge) this.path.challengePending = true;
      }
      if (now >= this.path.challengeDeadline) {
        // §8.2.4: path validation failed: go back to the previous path if there was one.
        this.path.challengeDeadline = Infinity;
        this.path.challengeRetry = Infinity;
        this.path.challenge = null;
        if (this.prevPath) {
          // §9.3.2: back to the last validated address, whose congestion and RTT state were never reset.
          this.path = this.prevPath;
          this.prevPath = null;
          this.recovery.setAmplificationBlocked(false, now);
        } else if (!this.isServer) {
          this.path.validated = true; // client migration without an answer: keep using it (peer may be lenient)
        }
      }
      const r = this.recovery.nextTimeout();
      if (r !== null && now >= r) this.recovery.onTimeout(now);
      this.afterInput(now);
    } catch (e) {
      this.fail(e, now);
    }
  }

  private effectiveIdle(): number {
    return Math.max(this.idleTimeout, 3 * this.recovery.ptoPeriod());
  }

  // ---------------------------------------------------------------------------------------------
  // Events

  pollEvent(): ConnectionEvent | undefined {
    if (this.eventHead >= this.events.length) {
      if (this.events.length) {
        this.events.length = 0;
        this.eventHead = 0;
      }
      return undefined;
    }
    const e = this.events[this.eventHead++]!;
    if (e.type === 'datagram') this.pendingDatagramEvents--;
    return e;
  }

  private pushEvent(e: ConnectionEvent): void {
    this.events.push(e);
    if (this.qlog) {
      if (e.type === 'closed') {
        const i = e.info;
        const trigger = i.kind === 'idle' ? 'idle_timeout' : i.kind === 'stateless-reset' ? 'stateless_reset' : i.kind === 'version-negotiation' ? 'version_mismatch' : i.kind === 'handshake-timeout' ? 'handshake_timeout' : i.application ? 'application' : i.code === 0 ? 'clean' : 'error';
        const data: Record<string, unknown> = { owner: i.remote ? 'remote' : 'local', reason: i.reason, trigger };
        if (i.kind === 'close') data[i.application ? 'application_code' : 'connection_code'] = i.code;
        this.qlog({ time: this.now, name: 'connectivity:connection_closed', data });
      } else if (e.type === 'keyUpdate') {
        const trigger = e.initiatedBy === 'local' ? 'local_update' : 'remote_update';
        for (const who of ['client', 'server']) this.qlog({ time: this.now, name: 'security:key_updated', data: { key_type: `${who}_1rtt_secret`, generation: e.phase, trigger } });
      }
    }
  }

  private afterInput(now: number): void {
    // Auto key update before the AEAD confidentiality limit (RFC 9001 §6.6).
    if (this.oneRtt && this.handshakeConfirmed && this.oneRtt.confidentialityLimitReached()) {
      if (this.oneRtt.canInitiateUpdate()) this.updateKeys();
      else throw new ProtocolViolation('quic', TransportError.AEAD_LIMIT_REACHED, 'AEAD confidentiality limit reached');
    }
    // The record pool serves a flight in progress; once nothing is in flight an idle connection
    // keeps a few (a bulk transfer would otherwise leave ~60 kB of pooled records per connection).
    if (this.infoPool.length > IDLE_INFO_POOL && this.cc.bytesInFlight === 0) this.infoPool.length = IDLE_INFO_POOL;
    void now;
  }

  // ---------------------------------------------------------------------------------------------
  // Application API

  openStream(bidi: boolean): number | null {
    if (this.closedFlag || this.state === 'closing' || this.state === 'draining') return null;
    if (!this.handshakeDone && !(this.zeroRttWrite && this.earlyDataRequested) && !this.isServer) return null;
    const id = this.streams.open(bidi);
    return id < 0 ? null : id;
  }

  write(id: number, data: Uint8Array, fin = false): number {
    const s = this.streams.sendStreams.get(id);
    if (!s) {
      if (isLocallyInitiated(id, this.isServer) || isBidi(id)) return 0; // closed or reset already
      throw new RangeError(`stream ${id} has no sending part`);
    }
    if (s.isReset || s.finished) return 0;
    const n = data.length > 0 ? s.write(data) : 0;
    if (fin && n === data.length) s.finish();
    if (n < data.length) this.writeBlocked.add(id);
    this.sendCtrlDirty.add(id);
    return n;
  }

  /** Bidirectional streams whose FIN was handed to the application while the sending part lives on. */
  private readonly finReported = new Set<number>();

  read(id: number, max = Infinity): StreamChunk | null {
    const s = this.streams.recvStreams.get(id);
    if (!s) {
      this.finReported.delete(id);
      this.readableNotified.delete(id); // (a stream reset and removed before it was read)
      return null;
    }
    if (this.finReported.has(id)) return null; // fin is reported exactly once
    this.readableNotified.delete(id);
    const data = this.streams.read(id, max, this.now, this.rtt.smoothedRtt);
    // A flow-control update became due: nextTimeout() says "now", so a driver that polls only on
    // timers and input still sends it (the node driver also kicks after reads).
    if (s.flow.wantsUpdate) this.recvCtrlDirty.add(id);
    if (data && (this.streams.connRecv.wantsUpdate || s.flow.wantsUpdate)) this.wakeAt = this.now;
    const fin = s.isFinished;
    if (fin) this.noteFinReported(id);
    if (!data) return fin ? { data: new Uint8Array(0), fin: true } : null;
    // Still data left: the application keeps reading; new data will notify again.
    return { data, fin };
  }

  private noteFinReported(id: number): void {
    if (!this.streams.recvStreams.has(id)) return; // the stream is gone: later reads return null anyway
    if (this.finReported.size >= 1024) for (const k of this.finReported) if (!this.streams.recvStreams.has(k)) this.finReported.delete(k);
    this.finReported.add(id);
  }

  resetStream(id: number, code: number): void {
    const s = this.streams.sendStreams.get(id);
    if (s) {
      s.reset(code);
      this.sendCtrlDirty.add(id);
    }
  }

  stopSending(id: number, code: number): void {
    if (!this.streams.recvStreams.has(id)) return;
    this.recvCtrlDirty.add(id);
    this.streams.stopSending(id, code);
    // Connection credit freed by the dropped data may make a MAX_DATA update due.
    if (this.streams.connRecv.wantsUpdate) this.wakeAt = this.now;
  }

  sendDatagram(data: Uint8Array): boolean {
    if (this.peerDatagramMax < 0 || data.length + 1 + varintLength(data.length) > this.peerDatagramMax) return false;
    if (data.length + 64 > this.maxDatagram) return false;
    if (this.datagramsOut.length >= MAX_PENDING_DATAGRAMS) return false;
    this.datagramsOut.push(data.slice());
    return true;
  }

  exportKeyingMaterial(label: string, length: number, context?: Uint8Array): Uint8Array {
    if (!this.tls || !this.handshakeDone) throw new Error('exportKeyingMaterial: the handshake is not complete yet');
    return this.tls.exportKeyingMaterial(label, length, context);
  }

  updateKeys(): boolean {
    const k = this.oneRtt;
    if (!k || !this.handshakeConfirmed || !k.canInitiateUpdate() || this.keyDiscardDeadline !== Infinity || this.awaitingNewPhase) return false;
    k.initiateUpdate();
    this.awaitingNewPhase = true; // old read keys kept until the peer's first new-phase packet (+3 PTO)
    this.pushEvent({ type: 'keyUpdate', phase: k.generation, initiatedBy: 'local' });
    this.pingPending = true; // make sure a packet in the new phase goes out
    return true;
  }

  /** Ask for a PING in the next packet (keep-alive, or to elicit an ACK). */
  ping(): void {
    this.pingPending = true;
  }

  close(code: number, reason: string, now: number): void {
    if (this.closedFlag || this.state === 'closing' || this.state === 'draining') return;
    this.now = Math.max(this.now, now);
    this.enterClosing({ code, frameType: 0, reason, application: true }, now);
  }

  // ---------------------------------------------------------------------------------------------
  // Closing (RFC 9000 §10)

  private enterClosing(c: { code: number; frameType: number; reason: string; application: boolean }, now: number): void {
    this.closeFrame = c;
    this.closeSendPending = true;
    this.state = 'closing';
    this.closeDeadline = now + 3 * this.recovery.ptoPeriod();
    this.closeInfo = { ...c, remote: false, kind: 'close' };
    this.pushEvent({ type: 'closed', info: this.closeInfo });
    this.datagramsOut.length = 0;
    this.pathResponses.length = 0; // §10.2.1: nothing but CONNECTION_CLOSE from now on
  }

  private enterDraining(info: CloseInfo, now: number, immediate: boolean): void {
    if (this.state === 'draining' || this.closedFlag) return;
    const wasClosing = this.state === 'closing';
    this.state = 'draining';
    this.closeDeadline = immediate ? now : now + 3 * this.recovery.ptoPeriod();
    if (!wasClosing) {
      this.closeInfo = info;
      this.pushEvent({ type: 'closed', info });
    }
    if (immediate) this.finish();
  }

  private finish(): void {
    if (this.closedFlag) return;
    this.state = 'closed';
    this.closedFlag = true;
    this.localCids.clear();
  }

  /** Closes after an error at the boundary: ProtocolViolation → its code; anything else → INTERNAL_ERROR + 'error' event. */
  private fail(e: unknown, now: number): void {
    if (this.state === 'closing' || this.state === 'draining' || this.closedFlag) return;
    if (isProtocolViolation(e)) {
      let code = e.code;
      if (e.layer === 'tls') code = cryptoError(e.code);
      else if (e.layer !== 'quic') code = TransportError.PROTOCOL_VIOLATION;
      this.enterClosing({ code, frameType: e.frameType, reason: e.message, application: false }, now);
    } else {
      this.pushEvent({ type: 'error', error: e });
      this.enterClosing({ code: TransportError.INTERNAL_ERROR, frameType: 0, reason: 'internal error', application: false }, now);
    }
  }
}

/** A built packet waiting to be sealed (two reused instances: the previous and the current packet of a datagram). */
class PendingSeal {
  keys: PacketKeys | null = null;
  level = 0;
  zeroRtt = false;
  headerOffset = 0;
  pnOffset = 0;
  pnLength = 0;
  lengthSize = 0;
  payloadEnd = 0;
  pn = 0;
  ackEliciting = false;
  inFlight = false;
  info: SentInfo | null = null;
  pathProbe = false;
  /** Bytes sealing adds after payloadEnd (sample padding + tag). */
  trailer = 0;
}

const PACKET_TYPE_NAMES = ['initial', '0RTT', 'handshake', 'retry', '1RTT', 'version_negotiation', 'unknown'];
const LEVEL_PACKET_TYPES = ['initial', 'handshake', '1RTT'];

function packetTypeName(t: PacketType): string {
  return PACKET_TYPE_NAMES[t] ?? 'unknown';
}

function validateTransportConfig(cfg: TransportConfig): void {
  const pos = (name: keyof TransportConfig, min = 0): void => {
    const v = cfg[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < min)) {
      throw new ConfigError(`${String(name)} must be a number >= ${min} (got ${String(v)})`);
    }
  };
  pos('maxIdleTimeout');
  pos('connectionWindow', 1);
  pos('streamWindow', 1);
  pos('maxStreamsBidi');
  pos('maxStreamsUni');
  pos('maxUdpPayloadSize', 1200);
  pos('maxAckDelay');
  pos('activeConnectionIdLimit', 2);
  pos('maxDatagramFrameSize');
  pos('maxReassemblySegments', 1);
  pos('keepAliveInterval');
  if (cfg.keepAliveInterval && cfg.maxIdleTimeout !== 0 && cfg.keepAliveInterval >= (cfg.maxIdleTimeout ?? 30_000)) {
    throw new ConfigError(`keepAliveInterval (${cfg.keepAliveInterval} ms) must be below maxIdleTimeout (${cfg.maxIdleTimeout ?? 30_000} ms), or the connection times out first`);
  }
  if (cfg.ackDelayExponent !== undefined && (cfg.ackDelayExponent < 0 || cfg.ackDelayExponent > 20)) {
    throw new ConfigError('ackDelayExponent must be 0..20');
  }
  if (cfg.maxAckDelay !== undefined && cfg.maxAckDelay >= 16384) throw new ConfigError('maxAckDelay must be below 16384 ms');
}

/**
 * Finds the quic_transport_parameters extension (0x39) in a complete ClientHello handshake message
 * (RFC 8446 §4.1.2). Returns null when absent or malformed (TLS then reports the error itself).
 */
function findQuicTransportParams(msg: Uint8Array): Uint8Array | null {
  let o = 4 + 2 + 32;
  if (o >= msg.length) return null;
  o += 1 + msg[o]!; // legacy_session_id
  if (o + 2 > msg.length) return null;
  o += 2 + ((msg[o]! << 8) | msg[o + 1]!); // cipher_suites
  if (o >= msg.length) return null;
  o += 1 + msg[o]!; // legacy_compression_methods
  if (o + 2 > msg.length) return null;
  const extEnd = o + 2 + ((msg[o]! << 8) | msg[o + 1]!);
  o += 2;
  if (extEnd > msg.length) return null;
  while (o + 4 <= extEnd) {
    const type = (msg[o]! << 8) | msg[o + 1]!;
    const len = (msg[o + 2]! << 8) | msg[o + 3]!;
    o += 4;
    if (o + len > extEnd) return null;
    if (type === 0x39) return msg.subarray(o, o + len);
    o += len;
  }
  return null;
}
