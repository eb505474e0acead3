// The page's model, reached over this server's JSON API. Every backend answers the same
// three calls, so the page does not know where the model runs:
//   info() -> the facts of GET /v1/model
//   generate(request, {onChunk, signal}) -> {texts}: onChunk({sample, delta} | {sample, text})
//   score(texts, {perToken, unit, sort}) -> {results}
import {readEvents} from "./sse.js";

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
  } catch (e) { /* not JSON: keep the status line */ }
  return new Error(message);
}

async function postJSON(url, body, signal, accept = "application/json") {
  return fetch(url, {
    method: "POST", signal,
    headers: {"Content-Type": "application/json", "Accept": accept},
    body: JSON.stringify(body),
  });
}

// URLs are relative to the page, so the page also works behind a proxy under a sub-path.
export function serverBackend(base = "") {
  return {
    kind: "server",
    async info() {
      const response = await fetch(`${base}v1/model`);
      if (!response.ok) throw await failure(response);
      return response.json();
    },
    async generate(request, {onChunk, signal} = {}) {
      const response = await postJSON(`${base}v1/generate/stream`, request, signal,
                                      "text/event-stream");
      if (!response.ok) throw await failure(response);
      for await (const {event, data} of readEvents(response)) {
        if (event === "chunk" && onChunk) onChunk(data);
        else if (event === "done") return data;
        else if (event === "error") throw new Error(data.error);
      }
      throw new Error("the server closed the stream before the end");
    },
    async score(texts, {perToken = false, unit = "text", sort = false, signal} = {}) {
      const response = await postJSON(`${base}v1/score`,
                                      {texts, per_token: perToken, unit, sort}, signal);
      if (!response.ok) throw await failure(response);
      return response.json();
    },
  };
}
