// Prisma's CLI keeps a long timer alive in its wasm engine after finishing (10–60 s); unref'ing long timers lets
// the process exit as soon as its work is done.
const { setTimeout: set, setInterval: every } = globalThis;
globalThis.setTimeout = (fn, ms, ...args) => {
  const t = set(fn, ms, ...args);
  if (ms >= 5000) t.unref?.();
  return t;
};
globalThis.setInterval = (fn, ms, ...args) => {
  const t = every(fn, ms, ...args);
  if (ms >= 5000) t.unref?.();
  return t;
};
