// The REST client: one function per endpoint, every failure turned into an ApiError whose
// message is a sentence the page can show as it is. When the server wants its API token, the
// token the user gave (kept for this tab only) goes along as a bearer header.

const TOKEN_KEY = "curvelab.apiToken";
let onUnauthorized = null;

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function rememberToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// Called with the ApiError of every 401, so that the page can ask for the token.
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

export class ApiError extends Error {
  constructor(status, message, fieldErrors = new Map()) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    // Field name -> message, from FastAPI's 422 body; empty for other errors.
    this.fieldErrors = fieldErrors;
  }
}

function fieldNameOf(location) {
  // FastAPI reports ["body", "max_epochs"], or ["body", "selu", "max_epochs"] for a
  // discriminated union; the field is the last string that is not the body marker.
  const names = (location || []).filter((part) => typeof part === "string" && part !== "body");
  return names.length > 0 ? names[names.length - 1] : "";
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const detail = body && body.detail;
  if (response.status === 422 && Array.isArray(detail)) {
    const fieldErrors = new Map();
    for (const problem of detail) {
      const field = fieldNameOf(problem.loc);
      const previous = fieldErrors.get(field);
      fieldErrors.set(field, previous ? `${previous} ${problem.msg}` : problem.msg);
    }
    return new ApiError(422, "Some parameters were refused; see the messages next to them.",
      fieldErrors);
  }
  if (typeof detail === "string") return new ApiError(response.status, detail);
  return new ApiError(response.status,
    `The server answered ${response.status} ${response.statusText}; try again in a moment.`);
}

async function request(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  const token = storedToken();
  if (token) options.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new ApiError(0, "The server cannot be reached; check that `make run` is still running.");
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && onUnauthorized) onUnauthorized(error);
    throw error;
  }
  if (response.status === 204) return null;
  return response.json();
}

const runPath = (runId) => `/api/runs/${encodeURIComponent(runId)}`;

export const api = {
  health: () => request("GET", "/api/health"),
  variants: async () => (await request("GET", "/api/variants")).variants,
  listRuns: async () => (await request("GET", "/api/runs")).runs,
  getRun: (runId) => request("GET", runPath(runId)),
  metrics: async (runId) => (await request("GET", `${runPath(runId)}/metrics`)).epochs,
  metricsCsvUrl: (runId) => `${runPath(runId)}/metrics?format=csv`,
  mcDropout: (runId) => request("GET", `${runPath(runId)}/mc-dropout`),
  createRun: (spec) => request("POST", "/api/runs", spec),
  cancelRun: (runId) => request("POST", `${runPath(runId)}/cancel`),
  deleteRun: (runId) => request("DELETE", runPath(runId)),
  startLrFinder: (spec) => request("POST", "/api/lr-finder", spec),
  openSession: () => request("POST", "/api/session"),
};
