// TypeScript declarations of the presenced client (protocol 1.1).

export type Signal = 'active' | 'idle' | 'background';
export type State = 'active' | 'idle' | 'away' | 'stale' | 'offline';
export type Phase = 'empty' | 'gathering' | 'ready' | 'cooling';

export interface Counts { active: number; idle: number; away: number; stale: number; offline?: number; [k: string]: number | undefined }

export interface SessionSummary { session_id: string; device: string; state: State; last_signal_at: number; last_active_at: number | null }

export interface UserView {
  user_id: string;
  state: State;
  prev?: State;
  since: number | null;
  seq: number;
  last_active_at: number | null;
  last_active_ago_ms?: number | null;
  last_seen_at?: number | null;
  confidence?: number;
  sessions?: SessionSummary[];
  /** Server time at which the last snapshot was taken. */
  at?: number;
}

export interface RoomMember { user_id: string; state: State; visible: boolean }

export interface RoomView {
  room_id: string;
  members: RoomMember[];
  counts: Counts;
  readiness: number;
  phase: Phase;
  observers?: number;
  member_count?: number;
  momentum?: number;
  media_attached?: boolean;
  pending_intents?: number;
  next_after?: string | null;
  /** The room's `start_when` rule holds (threshold events and snapshots keep it current). */
  threshold_holding?: boolean;
}

export type IntentStatus = 'pending' | 'delivered' | 'accepted' | 'declined' | 'expired' | 'cancelled';

export interface IntentView {
  intent_id: string;
  from_user: string;
  to_user?: string;
  to_room?: string;
  kind: string;
  status: IntentStatus;
  created_at: number;
  expires_at: number;
  delivered_at?: number;
  ready_at?: number;
  note?: string;
}

export interface IntentsView { incoming: IntentView[]; outgoing: IntentView[] }

export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectionView {
  status: ConnectionStatus;
  attempt: number;
  session_id?: string;
  user_id?: string;
  resumed?: boolean;
  heartbeat_ms?: number;
  state?: State;
  retryInMs?: number;
}

export interface Change {
  type: 'snapshot' | 'presence' | 'join' | 'leave' | 'member' | 'phase' | 'threshold' | 'delta' | 'intent';
  /** threshold: the room's `start_when` rule now holds (true) or stopped holding (false). */
  holding?: boolean;
  state?: State;
  prev?: State | IntentStatus | null;
  /**
   * presence: seq jumped; room: a frame was missed (counts disagree with the
   * member list, or a room seq jumped). A fresh snapshot was asked for.
   */
  gap?: boolean;
  user_id?: string;
  direction?: 'incoming' | 'outgoing';
  intent?: IntentView;
}

export declare class View<T> {
  readonly kind: 'user' | 'room' | 'intents' | 'connection';
  readonly id: string;
  /** Current snapshot (a new object on each change), null until the server sent one. */
  get: () => T | null;
  /** Calls listener on each change; the first listener subscribes to the server. Returns the unsubscribe. */
  subscribe: (listener: (value: T | null, change?: Change) => void) => () => void;
  /** Asks the server for a fresh snapshot. */
  refresh(): void;
}

export interface Clock {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

export interface StorageLike { getItem(k: string): string | null; setItem(k: string, v: string): void; removeItem?(k: string): void }

export interface ClientOptions {
  /** Base URL of any node (http or https); default: location.origin. */
  url?: string;
  /** A user token, or a function giving one (called on each connect). Default: a guest token from POST /v1/guests. */
  token?: string | (() => string | Promise<string>);
  /** 'hello' (protocol 1.1, default): the token goes in the hello frame; 'query': in ?token= (v1 servers). */
  tokenTransport?: 'hello' | 'query';
  device?: string;
  /** Extra HTTP headers (e.g. X-User on a dev node, from Node). */
  headers?: Record<string, string>;
  /** WebSocket constructor (inject the `ws` package in Node). */
  WebSocket?: any;
  fetch?: typeof fetch;
  clock?: Clock;
  random?: () => number;
  /** Where the session is kept; default sessionStorage; null: nowhere. */
  storage?: StorageLike | null;
  BroadcastChannel?: any;
  /** The page to map to signals; default the global window/document; null: none (Node). */
  env?: { window?: any; document?: any; navigator?: any } | null;
  baseDelayMs?: number;
  maxDelayMs?: number;
  leaveAfterMs?: number;
  idleAfterMs?: number;
  activeThrottleMs?: number;
  releaseGraceMs?: number;
  claimWaitMs?: number;
  /** On wake, an open socket that answers nothing this long is replaced (default 5000). */
  liveTimeoutMs?: number;
  /** A session up this long resets the reconnect backoff (default 10000). */
  stableMs?: number;
  /** false: do not read /readyz for a Retry-After after a failed connect. */
  probe?: boolean;
  /** Key of the shared client in connect() (default: url + token when a string). */
  shareKey?: string;
}

export declare class PresenceClient {
  constructor(options?: ClientOptions);
  readonly status: ConnectionStatus;
  readonly connection: View<ConnectionView>;
  readonly intents: View<IntentsView>;
  /** This client's user id once welcomed. */
  readonly userId?: string;
  /** true when this tab found its stored session held by another tab (a duplicated tab). */
  readonly duplicate?: boolean;
  acquire(): this;
  release(): void;
  start(): void;
  /** Explicit leave (pending for afterMs when given); nothing reconnects. */
  leave(afterMs?: number): void;
  /** Drops the socket without a leave: the session decays unless resumed (connect again with start()). */
  disconnect(): void;
  destroy(): void;
  user(id: string): View<UserView>;
  room(id: string): View<RoomView>;
  join(room: string, options?: { visible?: boolean }): View<RoomView>;
  leaveRoom(room: string): void;
  intend(spec: { to_user?: string; to_room?: string; kind?: string; ttl_ms?: number; note?: string }): Promise<IntentView>;
  accept(intentId: string): Promise<IntentView>;
  decline(intentId: string): Promise<IntentView>;
  cancel(intentId: string): Promise<IntentView>;
  timeline(room: string, since?: number): Promise<{ samples: { t: number; counts: Counts; readiness: number; phase: Phase }[] }>;
  /** Sends a signal now (the page mapping keeps sending its own). */
  signal(signal: Signal): void;
  /** Forces background (true) until called with false. */
  background(on?: boolean): void;
  /** Feed user input by hand (the page mapping does it in browsers). */
  input(): void;
  setHidden(hidden: boolean): void;
  /** Reconnect now if disconnected. */
  wake(): void;
  serverNow(): number;
  /** ms since server time t on the server's clock; null for null. */
  ago(t: number | null | undefined): number | null;
  /**
   * 'error' gets the node's error frames ({code, message}) and the client's own
   * (`dead_socket`); `session_taken_over`: another tab resumed this tab's
   * session, and this tab opened a session of its own (see the README).
   */
  on(type: 'welcome' | 'intent' | 'error', listener: (x: any) => void): () => void;
  http<T = any>(method: string, path: string, body?: unknown): Promise<T>;
}

/** The page's shared, reference-counted client: call release() once per connect(). */
export declare function connect(options?: ClientOptions): PresenceClient;
/** The same shared client without taking a reference: nothing starts until acquire() (connect() does both). */
export declare function shared(options?: ClientOptions): PresenceClient;

/** Full-jitter exponential backoff: uniform in [0, min(cap, base·2^attempt)). */
export declare function backoffDelay(attempt: number, baseMs: number, capMs: number, random?: () => number): number;
