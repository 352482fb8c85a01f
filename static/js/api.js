// The JSON API of the server, /api/v1: one function per endpoint.
import { stateToQuery } from "./state.js";

export class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(detail?.message ?? `HTTP ${status}`);
    this.status = status;
    this.detail = detail ?? {};
    this.retryAfter = retryAfter;
  }
}

// The page's session token: the unit of per-client caps. The cookie carries it too, but a page
// framed by another site gets no cookie, so every call names it in a header.
const session = document.querySelector('meta[name="ae-session"]')?.content ?? "";

async function request(path, options = {}) {
  const headers = session ? { ...options.headers, "X-AE-Session": session } : options.headers;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = Array.isArray(body?.detail)
      ? { message: body.detail.map((d) => d.msg).join("; ") }
      : body?.detail;
    throw new ApiError(response.status, detail, response.headers.get("Retry-After"));
  }
  return body;
}

const post = (path, payload, signal) =>
  request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
    signal,
  });

export const health = () => request("/api/v1/health");
export const devices = () => request("/api/v1/devices");
export const listExamples = () => request("/api/v1/examples");
export const getExample = (id) => request(`/api/v1/examples/${encodeURIComponent(id)}`);
export const trace = ({ code, device = "cpu", seed = 0 }, signal) =>
  post("/api/v1/trace", { code, device, seed }, signal);
export const layout = (
  { code, device = "cpu", seed = 0, expanded = [], depth = null, pass = null, aspect = 2 },
  signal,
) =>
  post("/api/v1/layout", { code, device, seed, expanded, depth, pass_index: pass, aspect }, signal);

// A download link of the current view: format svg | png | dot | html, or a deck of every step
// (pdf | pptx | gif | mp4). The server names the file as downloadName does: lesson-step.ext.
export function renderUrl({ format, theme = "light", ...state }) {
  const query = stateToQuery({
    code: state.code,
    device: state.device,
    step: state.step,
    expanded: state.expanded,
    lang: state.lang,
  });
  const name = (state.example ?? "program").replace(/[^\w-]+/g, "_").slice(0, 80);
  return `/api/v1/render?${query}&format=${encodeURIComponent(format)}&theme=${encodeURIComponent(theme)}&name=${encodeURIComponent(name)}`;
}
