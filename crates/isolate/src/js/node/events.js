// `node:events` (also `events`): Node 20's EventEmitter, callable as a plain function (old
// packages do `EventEmitter.call(this)` and `util.inherits`), with `once` (a promise),
// `on` (an async iterator), `errorMonitor`, `defaultMaxListeners` and the static helpers.
//
// Evaluated on the first import in an isolate (see node.rs) as a function of `host`.
(function (host) {
  "use strict";
  const errors = host.require("errors");
  const { invalidArgType, validateFunction } = errors;
  const inspect = (v) => host.require("util").inspect(v);

  const kRejection = Symbol.for("nodejs.rejection");
  const errorMonitor = Symbol("events.errorMonitor");
  let defaultMaxListeners = 10;
  let captureRejections = false;

  function checkListener(listener) {
    validateFunction(listener, "listener");
  }
  function validateMaxListeners(n, name) {
    errors.validateNumber(n, name, 0);
  }

  function EventEmitter(opts) {
    EventEmitter.init.call(this, opts);
  }
  EventEmitter.prototype._events = undefined;
  EventEmitter.prototype._eventsCount = 0;
  EventEmitter.prototype._maxListeners = undefined;

  // Own symbol properties, as Node's instances have them (util.inspect shows them).
  const kCapture = Symbol("kCapture");
  const kShapeMode = Symbol("shapeMode");
  EventEmitter.init = function (opts) {
    if (this._events === undefined || this._events === Object.getPrototypeOf(this)._events) {
      this._events = { __proto__: null };
      this._eventsCount = 0;
      this[kShapeMode] = false;
    } else {
      this[kShapeMode] = true;
    }
    this._maxListeners = this._maxListeners || undefined;
    if (opts?.captureRejections) {
      if (typeof opts.captureRejections !== "boolean") {
        throw invalidArgType("options.captureRejections", "boolean", opts.captureRejections);
      }
      this[kCapture] = true;
    } else {
      this[kCapture] = captureRejections;
    }
  };

  Object.defineProperty(EventEmitter, "defaultMaxListeners", {
    enumerable: true,
    get() { return defaultMaxListeners; },
    set(n) {
      validateMaxListeners(n, "defaultMaxListeners");
      defaultMaxListeners = n;
    },
  });
  Object.defineProperties(EventEmitter, {
    kMaxEventTargetListeners: { value: Symbol("events.maxEventTargetListeners"), enumerable: false },
  });

  EventEmitter.prototype.setMaxListeners = function setMaxListeners(n) {
    validateMaxListeners(n, "setMaxListeners");
    this._maxListeners = n;
    return this;
  };
  function maxListeners(that) {
    return that._maxListeners === undefined ? defaultMaxListeners : that._maxListeners;
  }
  EventEmitter.prototype.getMaxListeners = function getMaxListeners() { return maxListeners(this); };

  function addCatch(that, promise, type, args) {
    if (!that[kCapture]) return;
    try {
      const then = promise.then;
      if (typeof then === "function") {
        then.call(promise, undefined, (err) => queueMicrotask(() => emitUnhandledRejectionOrErr(that, err, type, args)));
      }
    } catch (err) {
      that.emit("error", err);
    }
  }
  function emitUnhandledRejectionOrErr(ee, err, type, args) {
    if (typeof ee[kRejection] === "function") {
      ee[kRejection](err, type, ...args);
    } else {
      const prev = ee[kCapture];
      try {
        ee[kCapture] = false;
        ee.emit("error", err);
      } finally {
        ee[kCapture] = prev;
      }
    }
  }

  EventEmitter.prototype.emit = function emit(type, ...args) {
    let doError = type === "error";
    const events = this._events;
    if (events !== undefined) {
      if (doError && events[errorMonitor] !== undefined) this.emit(errorMonitor, ...args);
      doError = doError && events.error === undefined;
    } else if (!doError) return false;

    if (doError) {
      const er = args.length > 0 ? args[0] : undefined;
      if (er instanceof Error) throw er;
      let stringified;
      try { stringified = inspect(er); } catch { stringified = er; }
      const err = errors.make(Error, "ERR_UNHANDLED_ERROR",
        `Unhandled error.${stringified === undefined ? "" : ` (${stringified})`}`);
      err.context = er;
      throw err;
    }

    const handler = events[type];
    if (handler === undefined) return false;
    if (typeof handler === "function") {
      const result = handler.apply(this, args);
      if (result !== undefined && result !== null) addCatch(this, result, type, args);
    } else {
      const listeners = handler.slice();
      for (let i = 0; i < listeners.length; ++i) {
        const result = listeners[i].apply(this, args);
        if (result !== undefined && result !== null) addCatch(this, result, type, args);
      }
    }
    return true;
  };

  function addListener(target, type, listener, prepend) {
    checkListener(listener);
    let events = target._events;
    let existing;
    if (events === undefined) {
      events = target._events = { __proto__: null };
      target._eventsCount = 0;
    } else {
      if (events.newListener !== undefined) {
        target.emit("newListener", type, listener.listener ?? listener);
        events = target._events;
      }
      existing = events[type];
    }
    if (existing === undefined) {
      events[type] = listener;
      ++target._eventsCount;
    } else {
      if (typeof existing === "function") {
        existing = events[type] = prepend ? [listener, existing] : [existing, listener];
      } else if (prepend) existing.unshift(listener);
      else existing.push(listener);
      const m = maxListeners(target);
      if (m > 0 && existing.length > m && !existing.warned) {
        existing.warned = true;
        const name = target.constructor?.name || "EventEmitter";
        console.warn(`MaxListenersExceededWarning: Possible EventEmitter memory leak detected. ` +
          `${existing.length} ${String(type)} listeners added to [${name}]. ` +
          "Use emitter.setMaxListeners() to increase limit");
      }
    }
    return target;
  }
  EventEmitter.prototype.addListener = function addListener_(type, listener) {
    return addListener(this, type, listener, false);
  };
  EventEmitter.prototype.on = EventEmitter.prototype.addListener;
  EventEmitter.prototype.prependListener = function prependListener(type, listener) {
    return addListener(this, type, listener, true);
  };

  function onceWrapper() {
    if (!this.fired) {
      this.target.removeListener(this.type, this.wrapFn);
      this.fired = true;
      if (arguments.length === 0) return this.listener.call(this.target);
      return this.listener.apply(this.target, arguments);
    }
  }
  function onceWrap(target, type, listener) {
    const state = { fired: false, wrapFn: undefined, target, type, listener };
    const wrapped = onceWrapper.bind(state);
    wrapped.listener = listener;
    state.wrapFn = wrapped;
    return wrapped;
  }
  EventEmitter.prototype.once = function once(type, listener) {
    checkListener(listener);
    this.on(type, onceWrap(this, type, listener));
    return this;
  };
  EventEmitter.prototype.prependOnceListener = function prependOnceListener(type, listener) {
    checkListener(listener);
    this.prependListener(type, onceWrap(this, type, listener));
    return this;
  };

  EventEmitter.prototype.removeListener = function removeListener(type, listener) {
    checkListener(listener);
    const events = this._events;
    if (events === undefined) return this;
    const list = events[type];
    if (list === undefined) return this;
    if (list === listener || list.listener === listener) {
      this._eventsCount -= 1;
      if (this[kShapeMode]) events[type] = undefined;
      else if (this._eventsCount === 0) this._events = { __proto__: null };
      else {
        delete events[type];
        if (events.removeListener) this.emit("removeListener", type, list.listener || listener);
      }
    } else if (typeof list !== "function") {
      let position = -1;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i] === listener || list[i].listener === listener) {
          position = i;
          break;
        }
      }
      if (position < 0) return this;
      if (position === 0) list.shift();
      else list.splice(position, 1);
      if (list.length === 1) events[type] = list[0];
      if (events.removeListener !== undefined) this.emit("removeListener", type, listener);
    }
    return this;
  };
  EventEmitter.prototype.off = EventEmitter.prototype.removeListener;

  EventEmitter.prototype.removeAllListeners = function removeAllListeners(type) {
    const events = this._events;
    if (events === undefined) return this;
    if (events.removeListener === undefined) {
      if (arguments.length === 0) {
        this._events = { __proto__: null };
        this._eventsCount = 0;
      } else if (events[type] !== undefined) {
        if (--this._eventsCount === 0) this._events = { __proto__: null };
        else delete events[type];
      }
      return this;
    }
    if (arguments.length === 0) {
      for (const key of Reflect.ownKeys(events)) {
        if (key === "removeListener") continue;
        this.removeAllListeners(key);
      }
      this.removeAllListeners("removeListener");
      this._events = { __proto__: null };
      this._eventsCount = 0;
      return this;
    }
    const listeners = events[type];
    if (typeof listeners === "function") this.removeListener(type, listeners);
    else if (listeners !== undefined) {
      for (let i = listeners.length - 1; i >= 0; i--) this.removeListener(type, listeners[i]);
    }
    return this;
  };

  function listeners_(target, type, unwrap) {
    const events = target._events;
    if (events === undefined) return [];
    const l = events[type];
    if (l === undefined) return [];
    if (typeof l === "function") return unwrap ? [l.listener || l] : [l];
    return unwrap ? l.map((f) => f.listener || f) : l.slice();
  }
  EventEmitter.prototype.listeners = function listeners(type) { return listeners_(this, type, true); };
  EventEmitter.prototype.rawListeners = function rawListeners(type) { return listeners_(this, type, false); };
  function listenerCount(type, listener) {
    const events = this._events;
    if (events !== undefined) {
      const l = events[type];
      if (typeof l === "function") {
        if (listener != null) return listener === l || listener === l.listener ? 1 : 0;
        return 1;
      }
      if (l !== undefined) {
        if (listener != null) {
          let n = 0;
          for (const f of l) if (f === listener || f.listener === listener) n++;
          return n;
        }
        return l.length;
      }
    }
    return 0;
  }
  EventEmitter.prototype.listenerCount = listenerCount;
  EventEmitter.listenerCount = function (emitter, type) {
    if (typeof emitter.listenerCount === "function") return emitter.listenerCount(type);
    return listenerCount.call(emitter, type);
  };
  EventEmitter.prototype.eventNames = function eventNames() {
    return this._eventsCount > 0 ? Reflect.ownKeys(this._events) : [];
  };

  // ---- static helpers -----------------------------------------------------------------
  function abortError(signal) {
    const e = new Error("The operation was aborted", { cause: signal?.reason });
    e.name = "AbortError";
    e.code = "ABORT_ERR";
    return e;
  }
  function validateSignal(signal) {
    if (signal !== undefined && (signal === null || typeof signal !== "object" || !("aborted" in signal))) {
      throw invalidArgType("options.signal", "AbortSignal", signal);
    }
  }
  function listen(emitter, name, listener, flags) {
    if (typeof emitter.on === "function") {
      if (flags?.once) emitter.once(name, listener);
      else emitter.on(name, listener);
    } else if (typeof emitter.addEventListener === "function") {
      emitter.addEventListener(name, listener, flags);
    } else {
      throw invalidArgType("emitter", "EventEmitter", emitter);
    }
  }
  function unlisten(emitter, name, listener) {
    if (typeof emitter.removeListener === "function") emitter.removeListener(name, listener);
    else if (typeof emitter.removeEventListener === "function") emitter.removeEventListener(name, listener);
  }

  EventEmitter.once = function once(emitter, name, options = {}) {
    errors.validateObject(options, "options");
    const signal = options.signal;
    validateSignal(signal);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const errorListener = (err) => {
        unlisten(emitter, name, resolver);
        if (signal != null) signal.removeEventListener?.("abort", abortListener);
        reject(err);
      };
      const resolver = (...args) => {
        if (typeof emitter.removeListener === "function") emitter.removeListener("error", errorListener);
        if (signal != null) signal.removeEventListener?.("abort", abortListener);
        resolve(args);
      };
      listen(emitter, name, resolver, { once: true });
      if (name !== "error" && typeof emitter.once === "function") emitter.once("error", errorListener);
      function abortListener() {
        unlisten(emitter, name, resolver);
        unlisten(emitter, "error", errorListener);
        reject(abortError(signal));
      }
      if (signal != null) signal.addEventListener?.("abort", abortListener, { once: true });
    });
  };

  EventEmitter.on = function on(emitter, event, options = {}) {
    const signal = options?.signal;
    validateSignal(signal);
    if (signal?.aborted) throw abortError(signal);
    const unconsumed = [];
    const pending = [];
    let error = null;
    let finished = false;
    const eventHandler = (...args) => {
      const p = pending.shift();
      if (p) p.resolve({ value: args, done: false });
      else unconsumed.push(args);
    };
    const errorHandler = (err) => {
      finished = true;
      const p = pending.shift();
      if (p) p.reject(err);
      else error = err;
      iterator.return();
    };
    const close = () => {
      unlisten(emitter, event, eventHandler);
      unlisten(emitter, "error", errorHandler);
      finished = true;
      for (const p of pending) p.resolve({ value: undefined, done: true });
      pending.length = 0;
      unconsumed.length = 0;
      return Promise.resolve({ value: undefined, done: true });
    };
    const iterator = Object.setPrototypeOf({
      next() {
        const value = unconsumed.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (error) {
          const p = Promise.reject(error);
          error = null;
          return p;
        }
        if (finished) return close();
        return new Promise((resolve, reject) => pending.push({ resolve, reject }));
      },
      return: close,
      throw(err) {
        error = err;
        unlisten(emitter, event, eventHandler);
        unlisten(emitter, "error", errorHandler);
      },
      [Symbol.asyncIterator]() { return this; },
    }, Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}).prototype));
    listen(emitter, event, eventHandler);
    if (event !== "error" && typeof emitter.on === "function") emitter.on("error", errorHandler);
    if (signal) signal.addEventListener?.("abort", () => errorHandler(abortError(signal)), { once: true });
    return iterator;
  };

  EventEmitter.getEventListeners = function getEventListeners(emitter, type) {
    if (typeof emitter.listeners === "function") return emitter.listeners(type);
    throw invalidArgType("emitter", ["EventEmitter", "EventTarget"], emitter);
  };
  EventEmitter.getMaxListeners = function getMaxListeners(emitter) {
    if (typeof emitter?.getMaxListeners === "function") return maxListeners(emitter);
    throw invalidArgType("emitter", ["EventEmitter", "EventTarget"], emitter);
  };
  EventEmitter.setMaxListeners = function setMaxListeners(n = defaultMaxListeners, ...targets) {
    validateMaxListeners(n, "setMaxListeners");
    if (targets.length === 0) defaultMaxListeners = n;
    else {
      for (const target of targets) {
        if (typeof target?.setMaxListeners === "function") target.setMaxListeners(n);
        else throw invalidArgType("eventTargets", ["EventEmitter", "EventTarget"], target);
      }
    }
  };
  EventEmitter.addAbortListener = function addAbortListener(signal, listener) {
    validateSignal(signal);
    validateFunction(listener, "listener");
    let removed = false;
    const wrapped = () => { if (!removed) listener(); };
    if (signal.aborted) queueMicrotask(wrapped);
    else signal.addEventListener("abort", wrapped, { once: true });
    return { [Symbol.dispose]() { removed = true; signal.removeEventListener?.("abort", wrapped); } };
  };

  EventEmitter.EventEmitter = EventEmitter;
  EventEmitter.usingDomains = false;
  EventEmitter.captureRejectionSymbol = kRejection;
  Object.defineProperty(EventEmitter, "captureRejections", {
    enumerable: true,
    get() { return captureRejections; },
    set(value) {
      if (typeof value !== "boolean") throw invalidArgType("EventEmitter.captureRejections", "boolean", value);
      captureRejections = value;
    },
  });
  EventEmitter.errorMonitor = errorMonitor;
  return EventEmitter;
})
