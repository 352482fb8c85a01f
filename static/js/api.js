// The JSON API of the server, /api/v1: one function per endpoint.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail?.message ?? `HTTP ${status}`);
    this.status = status;
    this.detail = detail ?? {};
  }
}

async function request(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body?.detail);
  return body;
}

export function listExamples() {
  return request("/api/v1/examples");
}

export function getExample(id) {
  return request(`/api/v1/examples/${encodeURIComponent(id)}`);
}

export function trace({ code, device = "cpu", seed = 0 }, signal) {
  return request("/api/v1/trace", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code, device, seed }),
    signal,
  });
}
