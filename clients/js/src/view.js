// A live view: get() returns the current immutable snapshot (null until the
// server sent one); subscribe(cb) calls cb(snapshot, change) on each change
// and returns its unsubscribe. The first listener subscribes to the server,
// the last one unsubscribes (after a grace, so a remount keeps it).
export class View {
  constructor(client, kind, id) {
    this.c = client;
    this.kind = kind;
    this.id = id;
    this.value = null;
    this.subs = new Set();
    this.get = () => this.value;
    this.subscribe = (cb) => {
      const entry = { cb };
      this.subs.add(entry);
      if (this.subs.size === 1) client.watch(this);
      return () => {
        if (this.subs.delete(entry) && !this.subs.size) client.unwatch(this);
      };
    };
  }

  set(value, change) {
    this.value = value;
    for (const s of [...this.subs]) s.cb(value, change);
  }

  /** Asks the server for a fresh snapshot. */
  refresh() {
    this.c.refresh(this);
  }
}
