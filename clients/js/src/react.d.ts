import type { ClientOptions, PresenceClient, UserView, RoomView, IntentsView, ConnectionView } from './index.js';

export interface ReactLike {
  useEffect(f: () => void | (() => void), deps?: unknown[]): void;
  useState<T>(init: () => T): [T, unknown];
  useSyncExternalStore<T>(subscribe: (cb: () => void) => () => void, get: () => T, getServer?: () => T): T;
}

export declare function bindReact(React: ReactLike): {
  usePresence(options?: ClientOptions): PresenceClient;
  /** null until the server's snapshot, and for an id null or undefined (nothing subscribed). */
  useUser(client: PresenceClient, id: string | null | undefined): UserView | null;
  useRoom(client: PresenceClient, id: string | null | undefined): RoomView | null;
  useIntents(client: PresenceClient): IntentsView | null;
  useConnection(client: PresenceClient): ConnectionView | null;
};
