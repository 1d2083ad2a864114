// Optional React binding (no react dependency: pass React in).
//   const { usePresence, useUser, useRoom, useIntents, useConnection } = bindReact(React);
import { connect } from './client.js';

export function bindReact(React) {
  const { useEffect, useState, useSyncExternalStore } = React;
  const useView = (view) => useSyncExternalStore(view.subscribe, view.get, view.get);
  function usePresence(options = {}) {
    // The shared client is taken in an effect, so a double mount (StrictMode)
    // takes and releases it and one socket stays.
    const [client] = useState(() => {
      const c = connect(options);
      c.release();
      return c;
    });
    useEffect(() => {
      client.acquire();
      return () => client.release();
    }, [client]);
    return client;
  }
  return {
    usePresence,
    useUser: (client, id) => useView(client.user(id)),
    useRoom: (client, id) => useView(client.room(id)),
    useIntents: (client) => useView(client.intents),
    useConnection: (client) => useView(client.connection),
  };
}
