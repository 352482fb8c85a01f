// The view state that lives in the URL: a declared list of fields, read from and written to the hash.

const FIELDS = ["example", "code", "device", "step", "expanded", "lang", "select"];

function encodeCode(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCode(encoded) {
  try {
    const binary = atob(encoded.replace(/-/g, "+").replace(/_/g, "/"));
    return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
}

export function readState(location = window.location) {
  const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  const state = {};
  for (const field of FIELDS) {
    const raw = params.get(field);
    if (raw === null) continue;
    if (field === "code") state.code = decodeCode(raw);
    else if (field === "expanded") state.expanded = raw ? raw.split(",") : [];
    else state[field] = raw;
  }
  return state;
}

export function stateToQuery(state) {
  const params = new URLSearchParams();
  for (const field of FIELDS) {
    const value = state[field];
    if (value === undefined || value === null || value === "") continue;
    if (field === "code") params.set("code", encodeCode(value));
    else if (field === "expanded") {
      if (value.length) params.set("expanded", value.join(","));
    } else params.set(field, String(value));
  }
  return params.toString();
}

export function writeState(state) {
  const hash = `#${stateToQuery(state)}`;
  if (window.location.hash !== hash) history.replaceState(null, "", hash);
}

// Positions are written as "forward:N" or "backward:P:N": read and written here only
// (app/player_step.py on the server).
export function parseStep(text) {
  const parts = (text ?? "").split(":");
  if (parts[0] === "forward" && parts.length === 2)
    return { phase: "forward", pass: 0, index: Number(parts[1]) };
  if (parts[0] === "backward" && parts.length === 3)
    return { phase: "backward", pass: Number(parts[1]), index: Number(parts[2]) };
  return null;
}

export function formatStep(position) {
  if (!position) return "";
  return position.phase === "forward"
    ? `forward:${position.index}`
    : `backward:${position.pass}:${position.index}`;
}

// A new history entry for a new run or lesson, so the browser's Back button returns to the last one.
export function pushState(state) {
  history.pushState(null, "", `#${stateToQuery(state)}`);
}

// Download names that say what they hold: "shared_weight-backward-1-5.svg".
export function downloadName(state, format) {
  const base = (state.example ?? "program").replace(/[^\w-]+/g, "_");
  const step = state.step
    ? `-${state.step.replace(/:/g, "-").replace(/-(\d+)$/, (_, n) => `-${Number(n) + 1}`)}`
    : "";
  return `${base}${step}.${format}`;
}
