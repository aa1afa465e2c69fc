// The collector's HTTP API (docs/http-api.md), relative to the page so that a proxy's path prefix holds.
// The bearer token is kept in sessionStorage: it lasts as long as the tab and is sent to this origin only.

const TOKEN_KEY = "dnswatch.token";
const BASE = "api/v1";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

let unauthenticated = () => {};

/** What to do when the API answers 401: the shell asks for a token. */
export function onUnauthenticated(handler) {
  unauthenticated = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const all = {...extra};
  if (token()) all.Authorization = `Bearer ${token()}`;
  return all;
}

async function failure(response) {
  let detail = {};
  try {
    detail = (await response.json()).error || {};
  } catch {
    // not JSON: a proxy's page; the status says enough
  }
  const error = new ApiError(response.status, detail.code || "error",
    detail.message || `the collector answered ${response.status} ${response.statusText}`, detail.field);
  if (response.status === 401) unauthenticated(error);
  return error;
}

/** One call; the JSON answer (null for 204), or ApiError. */
export async function call(method, path, body, accept = "application/json") {
  const init = {method, headers: headers({Accept: accept}), cache: "no-store"};
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(`${BASE}${path}`, init);
  } catch (error) {
    throw new ApiError(0, "unreachable", `the collector cannot be reached (${error.message})`);
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const answer = type.includes("json") ? await response.json() : await response.text();
  if (response.status === 202) answer.pending = true;
  return answer;
}

export const get = (path, accept) => call("GET", path, undefined, accept);
export const post = (path, body) => call("POST", path, body);
export const put = (path, body) => call("PUT", path, body);
export const remove = (path) => call("DELETE", path);

/** Save what a GET answers as a file (a plain link could not carry the token). */
export async function download(path, filename, accept) {
  const text = await get(path, accept);
  const url = URL.createObjectURL(new Blob([text], {type: accept || "application/octet-stream"}));
  const link = Object.assign(document.createElement("a"), {href: url, download: filename});
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Follow GET /events/stream with `query` (the list's filters): `onEvent(stored)` for each event, `onState`
 * with "live", "reconnecting" or "stopped". Read with fetch rather than EventSource, which cannot send the
 * Authorization header; it resumes as EventSource would, sending the last id seen as Last-Event-ID, so a
 * reconnection misses nothing. Returns the function that stops it.
 */
export function followEvents(query, onEvent, onState) {
  let lastId = "";
  let stopped = false;
  let controller = null;

  function dispatch(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      const key = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (key === "id") lastId = value;
      else if (key === "event") kind = value;
      else if (key === "data") data.push(value);
    }
    if (kind === "message" && data.length) onEvent(JSON.parse(data.join("\n")));
    else if (kind === "bookmark") onState("live");
  }

  async function run() {
    let pause = 500;
    while (!stopped) {
      controller = new AbortController();
      try {
        const extra = {Accept: "text/event-stream"};
        if (lastId) extra["Last-Event-ID"] = lastId;
        const response = await fetch(`${BASE}/events/stream${query}`,
          {headers: headers(extra), signal: controller.signal, cache: "no-store"});
        if (!response.ok) {
          const error = await failure(response);
          if (response.status === 401 || response.status === 403) {
            onState("stopped", error);
            return;
          }
          if (response.status === 422) lastId = ""; // a resume point this collector does not know: from now
          throw error;
        }
        pause = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += value.replaceAll("\r\n", "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // aborted, or the connection dropped: resumed below unless stopped
      }
      if (stopped) break;
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 15_000);
    }
    onState("stopped");
  }

  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
