// ukey.js — the browser (and Node) client of the ukey agent. Dependency-free ES module.
//
// The agent runs on the holder's machine and listens on ws://127.0.0.1:24815/rpc. On a machine
// where several people are logged in at once, each runs their own agent: the first takes 24815,
// the next ones take the following ports of the range 24815-24822 (DEFAULT_PORT_RANGE). connect()
// without a url finds the page's own agent by trying the range in order and keeping the first
// agent that accepts the connection: another account's agent refuses it (HTTP 403, naming the
// uids), so it is never used. A page connects, asks the holder to pair its origin (a dialog of
// the agent, never of the page), lists certificates, signs, authenticates and subscribes to
// insert/remove events. The page never sees or sends a PIN: the agent asks the holder for it in
// its own dialog.
//
//   import { UkeyClient, verifySignature } from './ukey.js';
//   const ukey = await UkeyClient.connect();
//   if (!ukey.paired) await ukey.pair();
//   const [cert] = await ukey.listCertificates();
//   const sig = await ukey.sign({ cert: cert.handle, data: 'text to sign' });
//   await verifySignature({ certificate: sig.certificate, data: 'text to sign', signature: sig.signature,
//                           mechanism: sig.mechanism });
//
// Errors are typed: NotPaired, UserCancelled, WrongPin, PinLocked, TokenRemoved, NotFound, Busy,
// Forbidden, NotSupported, AgentUnavailable, ProtocolError; all extend UkeyError, whose `kind`
// is the agent's error.data.kind.

export const PROTOCOL_VERSION = 1;
export const DEFAULT_PORT = 24815;
/** How many ports, from DEFAULT_PORT on, agents of different accounts take (24815-24822). */
export const DEFAULT_PORT_RANGE = 8;
export const DEFAULT_URL = `ws://127.0.0.1:${DEFAULT_PORT}/rpc`;

/** Base of every error this module throws. */
export class UkeyError extends Error {
  constructor(message, { kind = 'Unknown', code = 0, data = null } = {}) {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.data = data;
  }
}
/** The page's origin is not paired (call pair()), or lacks a grant (data.grant). */
export class NotPaired extends UkeyError {}
/** The holder refused or closed the agent's dialog. */
export class UserCancelled extends UkeyError {}
/** The PIN was wrong; retriesLeft says how many tries remain (the agent already re-asked). */
export class WrongPin extends UkeyError {
  get retriesLeft() { return this.data?.retries_left ?? null; }
}
/** The PIN is locked; the holder must have it unblocked. */
export class PinLocked extends UkeyError {}
/** The carrier was removed during the request. */
export class TokenRemoved extends UkeyError {}
/** No such carrier, certificate or key. */
export class NotFound extends UkeyError {}
/** The carrier is busy with other requests. */
export class Busy extends UkeyError {}
/** Not allowed for a web page (administrative methods, PINs). */
export class Forbidden extends UkeyError {}
/** The carrier or agent cannot do this. */
export class NotSupported extends UkeyError {}
/** No agent answers at the URL (not installed, not running, or the port differs). */
export class AgentUnavailable extends UkeyError {}
/** The agent or the connection broke the protocol, or the connection closed. */
export class ProtocolError extends UkeyError {}

const ERROR_CLASSES = {
  NotPaired, MissingGrant: NotPaired, Cancelled: UserCancelled, WrongPin, PinLocked,
  TokenRemoved, NotFound, Busy, Timeout: Busy, Forbidden, NotSupported,
};

/** Turns a JSON-RPC error object into the matching typed error. */
export function errorFromRpc(error) {
  const kind = error?.data?.kind ?? 'Unknown';
  const Cls = ERROR_CLASSES[kind] ?? UkeyError;
  return new Cls(error?.message ?? 'unknown error', { kind, code: error?.code ?? 0, data: error?.data ?? null });
}

// ---- bytes and base64 ----------------------------------------------------------------------

/** Bytes from a Uint8Array, ArrayBuffer, typed-array view, or string (UTF-8). */
export function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return new TextEncoder().encode(value);
  throw new TypeError('expected bytes (Uint8Array, ArrayBuffer) or a string');
}

/** Standard base64 of bytes. */
export function toBase64(bytes) {
  const b = toBytes(bytes);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of standard base64. */
export function fromBase64(text) {
  const s = atob(String(text).trim());
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// ---- the client ----------------------------------------------------------------------------

/** The agent URLs connect() tries without an explicit url, in order. */
export function agentUrls({ port = DEFAULT_PORT, portRange = DEFAULT_PORT_RANGE, host = '127.0.0.1' } = {}) {
  const first = Number(port);
  const count = Number(portRange);
  if (!Number.isInteger(first) || first < 1 || first > 65535) throw new TypeError(`bad agent port ${port}`);
  if (!Number.isInteger(count) || count < 1) throw new TypeError(`bad agent port range ${portRange}`);
  const urls = [];
  for (let p = first; p < first + count && p <= 65535; p++) urls.push(`ws://${host}:${p}/rpc`);
  return urls;
}

/** Opens a WebSocket; rejects when it fails (nothing listens, 403 of another account) or times out. */
function openSocket(url, WS, timeoutMs) {
  return new Promise((resolve, reject) => {
    let socket;
    try { socket = new WS(url); } catch (e) { reject(e); return; }
    const timer = setTimeout(() => {
      socket.onopen = socket.onerror = socket.onclose = null;
      try { socket.close(); } catch { /* already closed */ }
      reject(new Error('timeout'));
    }, timeoutMs);
    socket.onopen = () => { clearTimeout(timer); socket.onerror = socket.onclose = null; resolve(socket); };
    socket.onerror = socket.onclose = () => { clearTimeout(timer); socket.onopen = socket.onerror = socket.onclose = null; reject(new Error('refused')); };
  });
}

/** A connection to the agent. */
export class UkeyClient {
  /**
   * Connects and performs the version handshake. With `url`, to that agent only. Without it, to
   * this account's agent: the ports `port` .. `port + portRange - 1` of 127.0.0.1 are tried in
   * order and the first agent that accepts the connection is kept (other accounts' agents refuse
   * it). `client.url` says which one answered.
   * @param {{url?: string, port?: number, portRange?: number, host?: string, clientName?: string,
   *          timeoutMs?: number, WebSocket?: any}} [options]
   */
  static async connect(options = {}) {
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (!WS) throw new AgentUnavailable('no WebSocket implementation available', { kind: 'AgentUnavailable' });
    if (options.url) return UkeyClient.#connectTo(options.url, WS, options);
    const urls = agentUrls(options);
    const tried = [];
    for (const url of urls) {
      let socket;
      try {
        socket = await openSocket(url, WS, options.timeoutMs ?? 5000);
      } catch (e) {
        tried.push(url);
        continue;
      }
      return UkeyClient.#greet(socket, url, options);
    }
    throw new AgentUnavailable(
      `no ukey agent of yours answered on ${tried.join(', ')} (is it running? \`ukey agent status\` prints its port;`
      + ' other accounts\' agents refuse this page; an http page must be a development origin of the agent)',
      { kind: 'AgentUnavailable', data: { tried } });
  }

  static async #connectTo(url, WS, options) {
    let socket;
    try {
      socket = await openSocket(url, WS, options.timeoutMs ?? 5000);
    } catch (e) {
      throw new AgentUnavailable(`no ukey agent answered at ${url} (is it running? was this origin refused? is it another account's agent?)`,
        { kind: 'AgentUnavailable', data: { tried: [url] } });
    }
    return UkeyClient.#greet(socket, url, options);
  }

  static async #greet(socket, url, options) {
    const client = new UkeyClient(socket);
    client.url = url;
    client.hello = await client.call('hello', { versions: [PROTOCOL_VERSION], client: options.clientName ?? 'ukey.js' });
    return client;
  }

  constructor(socket) {
    this.socket = socket;
    this.nextId = 1;
    this.pending = new Map();
    this.subscriptions = new Map();
    this.hello = null;
    /** The agent's WebSocket URL this client is connected to. */
    this.url = null;
    this.closed = false;
    /** Called with a CloseEvent-like object when the connection ends. */
    this.onclose = null;
    socket.onmessage = (ev) => this.#receive(ev.data);
    socket.onclose = (ev) => {
      this.closed = true;
      for (const { reject } of this.pending.values()) {
        reject(new ProtocolError(`the connection to the agent closed (${ev?.code ?? '?'} ${ev?.reason ?? ''})`, { kind: 'Closed' }));
      }
      this.pending.clear();
      if (this.onclose) this.onclose(ev);
    };
  }

  /** True when the page's origin is paired. */
  get paired() { return Boolean(this.hello?.paired); }
  /** The grants this origin holds. */
  get grants() { return this.hello?.grants ?? []; }
  /** The page's origin as the agent sees it. */
  get origin() { return this.hello?.origin ?? null; }

  /** Calls any method; resolves with its result or rejects with a typed error. */
  call(method, params = {}) {
    if (this.closed) return Promise.reject(new ProtocolError('the connection to the agent is closed', { kind: 'Closed' }));
    const id = this.nextId++;
    const message = JSON.stringify({ jsonrpc: '2.0', id, method, params });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(message);
    });
  }

  #receive(text) {
    let msg;
    try { msg = JSON.parse(typeof text === 'string' ? text : new TextDecoder().decode(text)); } catch { return; }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (m.method === 'events.event') {
        const cb = this.subscriptions.get(m.params?.subscription);
        if (cb) cb(m.params.event);
        continue;
      }
      const waiter = this.pending.get(m.id);
      if (!waiter) {
        if (m.id === null && m.error) {
          for (const w of this.pending.values()) w.reject(errorFromRpc(m.error));
          this.pending.clear();
        }
        continue;
      }
      this.pending.delete(m.id);
      if (m.error) waiter.reject(errorFromRpc(m.error));
      else waiter.resolve(m.result);
    }
  }

  /** Asks the holder to allow this origin; grants: ['sign'] or ['sign', 'enroll']. */
  async pair(grants = ['sign']) {
    const r = await this.call('pair', { grants });
    this.hello = { ...this.hello, paired: r.paired, grants: r.grants };
    return r;
  }

  /** Carriers present now. */
  async listTokens() {
    return (await this.call('tokens.list')).tokens;
  }

  /** Certificates (of one carrier when `token` is given). */
  async listCertificates({ token } = {}) {
    return (await this.call('certs.list', token ? { token } : {})).certificates;
  }

  /**
   * Signs data (or a digest) with a certificate's key; the agent asks for the PIN.
   * @returns {Promise<{signature: Uint8Array, format: string, mechanism: string, certificate: Uint8Array|null, digest: Uint8Array}>}
   */
  async sign({ cert, data, digest, mechanism, format = 'raw', sm2Id } = {}) {
    const params = { cert, format };
    if (data !== undefined) params.data = toBase64(data);
    if (digest !== undefined) params.digest = toBase64(digest);
    if (mechanism) params.mechanism = mechanism;
    if (sm2Id) params.sm2_id = sm2Id;
    const r = await this.call('sign', params);
    return {
      signature: fromBase64(r.signature),
      format: r.format,
      mechanism: r.mechanism,
      certificate: r.certificate ? fromBase64(r.certificate) : null,
      digest: r.digest ? fromBase64(r.digest) : null,
    };
  }

  /** Makes a login token for this origin over the server's nonce; send it to the server as is. */
  async authenticate({ cert, nonce }) {
    return this.call('auth', { cert, nonce });
  }

  /** Calls `callback(event)` on carrier inserted/removed and certificate changes. */
  async subscribe(callback) {
    const { subscription } = await this.call('events.subscribe');
    this.subscriptions.set(subscription, callback);
    return {
      id: subscription,
      unsubscribe: async () => {
        this.subscriptions.delete(subscription);
        if (!this.closed) await this.call('events.unsubscribe', { subscription });
      },
    };
  }

  /** Enrolment (needs the 'enroll' grant): generates a key pair on a carrier. */
  async generateKey({ token, algorithm, label, id }) {
    return this.call('keys.generate', { token, algorithm, label, ...(id ? { id } : {}) });
  }

  /** Enrolment: a PKCS#10 request signed by a carrier key. */
  async createCsr({ key, subject, mechanism }) {
    return this.call('csr.create', { key, subject, ...(mechanism ? { mechanism } : {}) });
  }

  /** Enrolment: stores a certificate (DER bytes or PEM text) next to its key. */
  async importCertificate({ token, certificate, label }) {
    const text = typeof certificate === 'string' && certificate.includes('-----BEGIN') ? certificate : toBase64(certificate);
    return this.call('certs.import', { token, certificate: text, ...(label ? { label } : {}) });
  }

  /** Closes the connection. */
  close() {
    this.closed = true;
    this.socket.close();
  }
}

// ---- verification with WebCrypto -------------------------------------------------------------

const OID = {
  ecPublicKey: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
  p256: [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
  p384: [0x2b, 0x81, 0x04, 0x00, 0x22],
  rsa: [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
  sm2: [0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d],
};

/** Reads one DER TLV at `pos`: {tag, start (of value), end}. */
function tlv(der, pos) {
  if (pos + 2 > der.length) throw new ProtocolError('truncated DER', { kind: 'Crypto' });
  const tag = der[pos];
  let len = der[pos + 1];
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > der.length) throw new ProtocolError('bad DER length', { kind: 'Crypto' });
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i];
    start += n;
  }
  if (start + len > der.length) throw new ProtocolError('truncated DER', { kind: 'Crypto' });
  return { tag, start, end: start + len };
}

/** The SubjectPublicKeyInfo (DER) of an X.509 certificate (DER). */
export function spkiFromCertificate(certificate) {
  const der = toBytes(certificate);
  const cert = tlv(der, 0);
  const tbs = tlv(der, cert.start);
  let p = tbs.start;
  let field = tlv(der, p);
  if (field.tag === 0xa0) { p = field.end; field = tlv(der, p); } // [0] version
  // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
  for (let i = 0; i < 5; i++) { p = tlv(der, p).end; }
  const spki = tlv(der, p);
  if (spki.tag !== 0x30) throw new ProtocolError('no SubjectPublicKeyInfo in the certificate', { kind: 'Crypto' });
  return der.subarray(p, spki.end);
}

function contains(hay, needle) {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function keyKind(spki) {
  const head = spki.subarray(0, Math.min(spki.length, 40));
  if (contains(head, OID.sm2)) return 'sm2';
  if (contains(head, OID.ecPublicKey)) {
    if (contains(head, OID.p256)) return 'p256';
    if (contains(head, OID.p384)) return 'p384';
    return 'ec?';
  }
  if (contains(head, OID.rsa)) return 'rsa';
  return 'unknown';
}

const HASHES = { 'ecdsa-sha256': 'SHA-256', 'ecdsa-sha384': 'SHA-384', 'rsa-pkcs1-sha256': 'SHA-256', 'rsa-pss-sha256': 'SHA-256' };

async function importKey(spki, mechanism) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new NotSupported('WebCrypto is not available (a secure context is needed)', { kind: 'NotSupported' });
  const kind = keyKind(spki);
  if (mechanism === 'sm2-sm3' || kind === 'sm2') {
    throw new NotSupported('SM2 is not in WebCrypto; verify SM2 on the server (ukey::agent::auth::verify_token, or ukey verify)', { kind: 'NotSupported' });
  }
  const hash = HASHES[mechanism];
  if (!hash) throw new NotSupported(`unknown mechanism ${mechanism}`, { kind: 'NotSupported' });
  if (kind === 'p256' || kind === 'p384') {
    const key = await subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: kind === 'p256' ? 'P-256' : 'P-384' }, false, ['verify']);
    return { key, algorithm: { name: 'ECDSA', hash } };
  }
  if (kind === 'rsa') {
    const name = mechanism === 'rsa-pss-sha256' ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5';
    const key = await subtle.importKey('spki', spki, { name, hash }, false, ['verify']);
    return { key, algorithm: name === 'RSA-PSS' ? { name, saltLength: 32 } : { name } };
  }
  throw new NotSupported(`unsupported key type (${kind})`, { kind: 'NotSupported' });
}

/**
 * Verifies a raw signature (as `sign` returns with format 'raw') over data with the certificate's
 * public key. ECDSA (P-256, P-384) and RSA; SM2 throws NotSupported. Resolves true or false.
 */
export async function verifySignature({ certificate, data, signature, mechanism }) {
  const cert = typeof certificate === 'string' ? fromBase64(certificate) : toBytes(certificate);
  const sig = typeof signature === 'string' ? fromBase64(signature) : toBytes(signature);
  const { key, algorithm } = await importKey(spkiFromCertificate(cert), mechanism);
  return globalThis.crypto.subtle.verify(algorithm, key, sig, toBytes(data));
}

async function digest(mechanism, bytes) {
  return new Uint8Array(await globalThis.crypto.subtle.digest(HASHES[mechanism] ?? 'SHA-256', bytes));
}

/**
 * Checks a login token on the server side (Node 20+ or a browser): format, origin and nonce as
 * expected, and the signature over hash(origin) ‖ hash(nonce) made by the certificate's key.
 * Resolves with the certificate (DER) for the server's own chain and identity checks; rejects
 * with UkeyError (kind 'Crypto') otherwise. SM2 tokens: use ukey::agent::auth::verify_token.
 */
export async function verifyAuthToken(token, { origin, nonce }) {
  const fail = (m) => { throw new UkeyError(m, { kind: 'Crypto' }); };
  if (token?.format !== 'ukey-auth/1') fail(`unknown token format ${token?.format}`);
  if (token.origin !== origin) fail(`the token was made for ${token.origin}, not for ${origin}`);
  if (token.nonce !== nonce) fail('the token answers another nonce (replayed or stale)');
  const cert = fromBase64(token.certificate);
  const te = new TextEncoder();
  const h1 = await digest(token.algorithm, te.encode(token.origin));
  const h2 = await digest(token.algorithm, te.encode(token.nonce));
  const message = new Uint8Array(h1.length + h2.length);
  message.set(h1, 0);
  message.set(h2, h1.length);
  const ok = await verifySignature({ certificate: cert, data: message, signature: token.signature, mechanism: token.algorithm });
  if (!ok) fail('the token signature does not verify');
  return { certificate: cert };
}

/** A fresh random nonce for authenticate() (32 bytes, base64). */
export function newNonce() {
  const b = new Uint8Array(32);
  globalThis.crypto.getRandomValues(b);
  return toBase64(b);
}
