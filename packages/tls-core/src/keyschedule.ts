/**
 * The TLS 1.3 key schedule (RFC 8446 §7.1):
 *
 *   PSK or 0 → Early Secret → (binder key, c e traffic, e exp master)
 *   Derive-Secret(., "derived", "") + (EC)DHE → Handshake Secret → (c hs traffic, s hs traffic)
 *   Derive-Secret(., "derived", "") + 0 → Master Secret → (c ap traffic, s ap traffic, exp master, res master)
 *
 * Stateless helpers over a provider and hash; callers pass transcript hashes.
 */
import type { CryptoProvider, HashAlg } from './crypto/provider.js';
import { hashLength } from './crypto/provider.js';
import { deriveSecret, hkdfExpandLabel } from './hkdf.js';

export class KeySchedule {
  readonly hashLen: number;
  private readonly emptyHash: Uint8Array;
  constructor(
    readonly provider: CryptoProvider,
    readonly hash: HashAlg,
  ) {
    this.hashLen = hashLength[hash];
    this.emptyHash = provider.digest(hash, new Uint8Array(0));
  }

  private zeros(): Uint8Array {
    return new Uint8Array(this.hashLen);
  }

  /** Early Secret = HKDF-Extract(0, PSK) (PSK = 0-string when none). */
  earlySecret(psk: Uint8Array | null): Uint8Array {
    return this.provider.hkdfExtract(this.hash, this.zeros(), psk ?? this.zeros());
  }

  /** binder_key for a resumption ("res binder") or external ("ext binder") PSK. */
  binderKey(early: Uint8Array, external = false): Uint8Array {
    return deriveSecret(this.provider, this.hash, early, external ? 'ext binder' : 'res binder', this.emptyHash);
  }

  /** finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (RFC 8446 §4.4.4). */
  finishedKey(base: Uint8Array): Uint8Array {
    return hkdfExpandLabel(this.provider, this.hash, base, 'finished', new Uint8Array(0), this.hashLen);
  }

  /** HMAC(finished_key(base), transcriptHash): Finished verify_data and PSK binders. */
  finishedMac(base: Uint8Array, transcriptHash: Uint8Array): Uint8Array {
    return this.provider.hmac(this.hash, this.finishedKey(base), transcriptHash);
  }

  clientEarlyTrafficSecret(early: Uint8Array, chHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, early, 'c e traffic', chHash);
  }

  earlyExporterMasterSecret(early: Uint8Array, chHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, early, 'e exp master', chHash);
  }

  /** Handshake Secret = HKDF-Extract(Derive-Secret(early, "derived", ""), (EC)DHE or 0). */
  handshakeSecret(early: Uint8Array, sharedSecret: Uint8Array | null): Uint8Array {
    const salt = deriveSecret(this.provider, this.hash, early, 'derived', this.emptyHash);
    return this.provider.hkdfExtract(this.hash, salt, sharedSecret ?? this.zeros());
  }

  clientHandshakeTrafficSecret(hs: Uint8Array, chShHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, hs, 'c hs traffic', chShHash);
  }

  serverHandshakeTrafficSecret(hs: Uint8Array, chShHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, hs, 's hs traffic', chShHash);
  }

  masterSecret(hs: Uint8Array): Uint8Array {
    const salt = deriveSecret(this.provider, this.hash, hs, 'derived', this.emptyHash);
    return this.provider.hkdfExtract(this.hash, salt, this.zeros());
  }

  clientApplicationTrafficSecret(master: Uint8Array, chSfHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, master, 'c ap traffic', chSfHash);
  }

  serverApplicationTrafficSecret(master: Uint8Array, chSfHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, master, 's ap traffic', chSfHash);
  }

  exporterMasterSecret(master: Uint8Array, chSfHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, master, 'exp master', chSfHash);
  }

  resumptionMasterSecret(master: Uint8Array, chCfHash: Uint8Array): Uint8Array {
    return deriveSecret(this.provider, this.hash, master, 'res master', chCfHash);
  }

  /** The PSK for a ticket: HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length) (§4.6.1). */
  resumptionPsk(resMaster: Uint8Array, ticketNonce: Uint8Array): Uint8Array {
    return hkdfExpandLabel(this.provider, this.hash, resMaster, 'resumption', ticketNonce, this.hashLen);
  }

  /** application_traffic_secret_N+1 (§7.2). */
  nextTrafficSecret(secret: Uint8Array): Uint8Array {
    return hkdfExpandLabel(this.provider, this.hash, secret, 'traffic upd', new Uint8Array(0), this.hashLen);
  }

  /** TLS-Exporter(label, context, length) (§7.5) from an exporter master secret. */
  exporter(exporterMaster: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
    const tmp = deriveSecret(this.provider, this.hash, exporterMaster, label, this.emptyHash);
    return hkdfExpandLabel(this.provider, this.hash, tmp, 'exporter', this.provider.digest(this.hash, context), length);
  }
}
