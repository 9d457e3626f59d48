// The API as the console calls it: the caller's key (kept in this browser), JSON errors turned into messages.

const KEY_STORE = "imgrec.apiKey";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORE) || "",
  set: (key) => localStorage.setItem(KEY_STORE, key.trim()),
};

/** Call the API; resolve with the JSON body, or reject with an ApiError carrying the API's own code and message. */
export async function call(path, { method = "GET", json, form } = {}) {
  const headers = {};
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, "network_error", `The API could not be reached (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page, say: shown as its status line below.
  }
  if (!response.ok) {
    const error = data && data.error;
    if (error && error.message) throw new ApiError(response.status, error.code, error.message);
    throw new ApiError(response.status, "http_error", `HTTP ${response.status} ${response.statusText}`.trim());
  }
  return data;
}

/** The models a caller can pick: `GET /v1/models` where the API has it, else the console's registry list. */
export async function listModels() {
  try {
    const answer = await call("/v1/models");
    return Array.isArray(answer) ? answer : answer.models;
  } catch (err) {
    if (err.status !== 404 || err.code === "unknown_model") throw err;
  }
  return call("/console/models");
}
