// Optional React binding (no react dependency: pass React in).
//   const { usePresence, useUser, useRoom, useIntents, useConnection } = bindReact(React);
import { shared } from './client.js';

const none = () => null;
const nothing = () => none; // subscribe to nothing: unsubscribe is a no-op

export function bindReact(React) {
  const { useEffect, useState, useSyncExternalStore } = React;
  // getSnapshot is the view's get(): the same object until the view changes
  // (React re-renders in a loop otherwise). The server snapshot is null: a page
  // rendered on a server has no live presence, and hydration must match it.
  const useView = (view) => useSyncExternalStore(view ? view.subscribe : nothing, view ? view.get : none, none);
  function usePresence(options = {}) {
    // Rendering takes no reference and opens nothing (a render may be thrown
    // away, or run on a server); the effect takes one, so a double mount
    // (StrictMode) takes, releases and takes again, and one socket stays.
    const [client] = useState(() => shared(options));
    useEffect(() => {
      client.acquire();
      return () => client.release();
    }, [client]);
    return client;
  }
  return {
    usePresence,
    // id null or undefined (not known yet): null, and nothing is subscribed.
    useUser: (client, id) => useView(id == null ? null : client.user(id)),
    useRoom: (client, id) => useView(id == null ? null : client.room(id)),
    useIntents: (client) => useView(client.intents),
    useConnection: (client) => useView(client.connection),
  };
}
