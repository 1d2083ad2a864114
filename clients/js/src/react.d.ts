import type { ClientOptions, PresenceClient, UserView, RoomView, IntentsView, ConnectionView } from './index.js';

export interface ReactLike {
  useEffect(f: () => void | (() => void), deps?: unknown[]): void;
  useState<T>(init: () => T): [T, unknown];
  useSyncExternalStore<T>(subscribe: (cb: () => void) => () => void, get: () => T, getServer?: () => T): T;
}

export declare function bindReact(React: ReactLike): {
  usePresence(options?: ClientOptions): PresenceClient;
  useUser(client: PresenceClient, id: string): UserView | null;
  useRoom(client: PresenceClient, id: string): RoomView | null;
  useIntents(client: PresenceClient): IntentsView | null;
  useConnection(client: PresenceClient): ConnectionView | null;
};
