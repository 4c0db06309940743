// Types of ukey.js, the client of the ukey agent (docs/agent-protocol.json is the protocol).

export declare const PROTOCOL_VERSION: 1;
export declare const DEFAULT_PORT: number;
/** How many ports from DEFAULT_PORT on agents of different accounts take (8: 24815-24822). */
export declare const DEFAULT_PORT_RANGE: number;
export declare const DEFAULT_URL: string;

export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView | string;
export type Grant = 'sign' | 'enroll';
export type Mechanism = 'sm2-sm3' | 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pkcs1-sha256' | 'rsa-pss-sha256';
export type SignatureOutput = 'raw' | 'der' | 'cms' | 'cms-attached';
export type KeyAlgorithm = 'sm2' | 'p256' | 'p384' | 'rsa2048' | 'rsa3072' | 'rsa4096';

export interface ErrorInit { kind?: string; code?: number; data?: Record<string, unknown> | null }
export declare class UkeyError extends Error {
  constructor(message: string, init?: ErrorInit);
  /** The agent's error.data.kind (e.g. "WrongPin", "NotPaired"). */
  readonly kind: string;
  readonly code: number;
  readonly data: Record<string, unknown> | null;
}
export declare class NotPaired extends UkeyError {}
export declare class UserCancelled extends UkeyError {}
export declare class WrongPin extends UkeyError { readonly retriesLeft: number | null }
export declare class PinLocked extends UkeyError {}
export declare class TokenRemoved extends UkeyError {}
export declare class NotFound extends UkeyError {}
export declare class Busy extends UkeyError {}
export declare class Forbidden extends UkeyError {}
export declare class NotSupported extends UkeyError {}
export declare class AgentUnavailable extends UkeyError {}
export declare class ProtocolError extends UkeyError {}
export declare function errorFromRpc(error: { code?: number; message?: string; data?: { kind?: string } }): UkeyError;

export interface PinStatus {
  retries_left: number | null;
  max_retries: number | null;
  locked: boolean;
  count_low: boolean;
  final_try: boolean;
  default_pin: boolean | null;
  must_change: boolean;
}
export interface Token {
  id: string;
  kind: 'soft' | 'pkcs11' | 'pcsc' | 'hid';
  label: string;
  manufacturer: string;
  model: string;
  serial: string;
  /** A software token, not a hardware carrier. */
  software: boolean;
  uri: string;
  pin?: { user: PinStatus; so: PinStatus; protected_path: boolean };
}
export interface Certificate {
  /** Pass to sign() / authenticate(). */
  handle: string;
  token: string;
  id: string;
  label: string;
  subject: string;
  issuer: string;
  serial: string;
  not_before: number;
  not_after: number;
  key_usage: string[];
  key_algorithm: string | null;
  fingerprint: string;
  has_key: boolean;
  mechanisms: Mechanism[];
  uri: string;
  /** base64 DER */
  der: string;
}
export interface Key {
  handle: string;
  token: string;
  id: string;
  label: string;
  algorithm: string;
  public_key?: string;
  always_authenticate: boolean;
  mechanisms: Mechanism[];
  certificate: string | null;
  uri: string;
}
export interface Signature {
  signature: Uint8Array;
  format: SignatureOutput;
  mechanism: Mechanism;
  certificate: Uint8Array | null;
  digest: Uint8Array | null;
}
export interface AuthToken {
  format: 'ukey-auth/1';
  origin: string;
  nonce: string;
  algorithm: Mechanism;
  /** base64 DER */
  certificate: string;
  /** base64; raw r‖s for EC and SM2 */
  signature: string;
}
export type AgentEvent =
  | { type: 'carrier.inserted'; token: Token }
  | { type: 'carrier.removed'; token: string }
  | { type: 'certs.changed'; token: string }
  | { type: 'events.lagged'; missed: number }
  /** the page's origin was revoked: the subscription is over */
  | { type: 'events.ended'; reason: string };
export interface Hello {
  agent: 'ukey';
  version: string;
  protocol: number;
  transport: 'websocket' | 'unix';
  methods: string[];
  origin?: string;
  paired?: boolean;
  grants?: Grant[];
}
export interface Subscription { id: number; unsubscribe(): Promise<void> }
export interface ConnectOptions {
  /** One agent's URL; without it, this account's agent is searched on the port range. */
  url?: string;
  /** First port of the range searched without `url` (default 24815). */
  port?: number;
  /** How many ports the range has (default DEFAULT_PORT_RANGE). */
  portRange?: number;
  /** Loopback host of the range (default 127.0.0.1). */
  host?: string;
  clientName?: string;
  timeoutMs?: number;
  /** A WebSocket class (Node before 22 has none built in). */
  WebSocket?: unknown;
}

/** The URLs connect() tries without `url`, in order. */
export declare function agentUrls(options?: { port?: number; portRange?: number; host?: string }): string[];

export declare class UkeyClient {
  static connect(options?: ConnectOptions): Promise<UkeyClient>;
  hello: Hello | null;
  /** The URL of the agent this client reached. */
  url: string | null;
  readonly paired: boolean;
  readonly grants: Grant[];
  readonly origin: string | null;
  onclose: ((event: unknown) => void) | null;
  call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T>;
  pair(grants?: Grant[]): Promise<{ origin: string; paired: boolean; grants: Grant[] }>;
  listTokens(): Promise<Token[]>;
  listCertificates(options?: { token?: string }): Promise<Certificate[]>;
  sign(options: {
    cert: string;
    data?: Bytes;
    digest?: Bytes;
    mechanism?: Mechanism;
    format?: SignatureOutput;
    sm2Id?: string;
  }): Promise<Signature>;
  authenticate(options: { cert: string; nonce: string }): Promise<AuthToken>;
  subscribe(callback: (event: AgentEvent) => void): Promise<Subscription>;
  generateKey(options: { token: string; algorithm: KeyAlgorithm; label: string; id?: string }): Promise<Key>;
  createCsr(options: { key: string; subject: string; mechanism?: Mechanism }): Promise<{ csr: string; der: string }>;
  importCertificate(options: { token: string; certificate: Bytes; label?: string }): Promise<Certificate>;
  close(): void;
}

export declare function toBytes(value: Bytes): Uint8Array;
export declare function toBase64(bytes: Bytes): string;
export declare function fromBase64(text: string): Uint8Array;
export declare function spkiFromCertificate(certificate: Bytes): Uint8Array;
export declare function verifySignature(options: {
  certificate: Bytes;
  data: Bytes;
  signature: Bytes;
  mechanism: Mechanism;
}): Promise<boolean>;
export declare function verifyAuthToken(token: AuthToken, expected: { origin: string; nonce: string }): Promise<{ certificate: Uint8Array }>;
export declare function newNonce(): string;
