// A minimal React for the binding's tests (no react package): function
// components with useState, useEffect and useSyncExternalStore, following the
// contracts React documents and enforces:
// - getSnapshot must return the same value (Object.is) when nothing changed;
//   React checks it on each render (dev) and re-renders forever otherwise:
//   here a render throws, and more than 50 renders in one update throw;
// - subscribe is called after commit and again whenever its identity changes
//   (the old one's unsubscribe first); a store change re-renders only if
//   getSnapshot's value changed; a change between render and subscribe is seen;
// - effects run after commit, cleanups on unmount or a change of deps;
// - StrictMode (strict: true) calls state initializers and component bodies
//   twice, and mounts effects, cleans them up and mounts them again;
// - renderToString runs the body once with the server snapshots and no effects.
export function createReact({ strict = false } = {}) {
  let current = null;
  let server = false;
  const eq = (a, b) => a && b && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

  const React = {
    useState(init) {
      const inst = current;
      const i = inst.hook++;
      if (!inst.hooks[i]) {
        const make = () => (typeof init === 'function' ? init() : init);
        const value = make();
        if (strict && !server) make(); // StrictMode: the initializer runs twice
        const h = (inst.hooks[i] = { value });
        h.set = (v) => {
          const next = typeof v === 'function' ? v(h.value) : v;
          if (!Object.is(next, h.value)) (h.value = next), inst.update();
        };
      }
      return [inst.hooks[i].value, inst.hooks[i].set];
    },
    useEffect(f, deps) {
      const inst = current;
      const i = inst.hook++;
      const h = inst.hooks[i] || (inst.hooks[i] = { effect: true });
      if (server) return;
      if (!h.mounted || !deps || !eq(deps, h.deps)) inst.effects.push({ h, f, deps });
    },
    useSyncExternalStore(subscribe, getSnapshot, getServerSnapshot) {
      const inst = current;
      const i = inst.hook++;
      if (server) {
        if (!getServerSnapshot) throw new Error('Missing getServerSnapshot');
        return getServerSnapshot();
      }
      const value = getSnapshot();
      if (!Object.is(value, getSnapshot())) throw new Error('The result of getSnapshot should be cached to avoid an infinite loop');
      const h = inst.hooks[i] || (inst.hooks[i] = { store: true });
      h.value = value;
      h.get = getSnapshot;
      if (h.subscribed !== subscribe) {
        const sub = subscribe;
        inst.effects.push({
          h: (h.storeEffect ||= {}),
          f: () => {
            h.subscribed = sub;
            const changed = () => !Object.is(h.value, h.get()) && inst.update();
            const off = sub(changed);
            changed(); // a change between render and subscribe
            return () => {
              off();
              if (h.subscribed === sub) h.subscribed = null;
            };
          },
        });
      }
      return value;
    },
  };

  /** Mounts component(props): {result, renders, rerender(props), unmount()}. */
  function mount(component, props) {
    const inst = { hooks: [], hook: 0, effects: [], mounted: true, renders: 0, result: undefined, props };
    let depth = 0;
    const cleanups = new Set();
    const runEffects = (strictMount) => {
      const effects = inst.effects;
      inst.effects = [];
      for (const e of effects) {
        if (e.h.cleanup) cleanups.delete(e.h.cleanup), e.h.cleanup();
        e.h.cleanup = e.f() || null;
        e.h.deps = e.deps;
        e.h.mounted = true;
        if (e.h.cleanup) cleanups.add(e.h.cleanup);
      }
      if (strictMount) {
        // StrictMode: unmount every effect and mount it again.
        for (const e of effects) if (e.h.cleanup) cleanups.delete(e.h.cleanup), e.h.cleanup();
        for (const e of effects) {
          e.h.cleanup = e.f() || null;
          if (e.h.cleanup) cleanups.add(e.h.cleanup);
        }
      }
    };
    const render = (first) => {
      if (++depth > 50) throw new Error('Too many re-renders');
      try {
        for (let pass = 0; pass < (strict ? 2 : 1); pass++) {
          current = inst;
          inst.hook = 0;
          if (pass === 1) inst.effects = []; // the discarded pass's effects never run
          inst.result = component(inst.props);
          current = null;
        }
        inst.renders++;
        runEffects(first && strict);
      } finally {
        depth--;
      }
    };
    inst.update = () => inst.mounted && render(false);
    render(true);
    return {
      get result() {
        return inst.result;
      },
      get renders() {
        return inst.renders;
      },
      rerender(p) {
        inst.props = p;
        render(false);
      },
      unmount() {
        inst.mounted = false;
        for (const c of [...cleanups].reverse()) c();
        cleanups.clear();
      },
    };
  }

  /** Renders once as a server would: server snapshots, no effects. */
  function renderToString(component, props) {
    const inst = { hooks: [], hook: 0, effects: [] };
    server = true;
    current = inst;
    try {
      return component(props);
    } finally {
      server = false;
      current = null;
    }
  }

  return { React, mount, renderToString };
}
