// The page's model in this browser: the three calls of the server's backend (backend.js),
// answered by the exported model running in a Web Worker (worker.js), so the page stays
// responsive while it generates.
import {facts} from "./requests.js";

export function browserBackend(url) {
  const worker = new Worker(new URL("./worker.js", import.meta.url), {type: "module"});
  const pending = new Map();
  let next = 1;
  const fail = (message) => {
    for (const request of pending.values()) request.reject(new Error(message));
    pending.clear();
  };
  worker.onmessage = ({data}) => {
    const request = pending.get(data.id);
    if (!request) return;
    if (data.type === "chunk") {
      if (request.onChunk) request.onChunk(data.chunk);
      return;
    }
    pending.delete(data.id);
    if (data.type === "result") request.resolve(data.result);
    else {
      const error = new Error(data.message);
      error.name = data.name || "Error";
      request.reject(error);
    }
  };
  worker.onerror = (event) => {
    event.preventDefault();
    fail(`the model's worker failed (${event.message || "it could not start"}); reload the page`);
  };
  const call = (message, {onChunk, signal} = {}) => new Promise((resolve, reject) => {
    const id = next++;
    pending.set(id, {resolve, reject, onChunk});
    if (signal) signal.addEventListener("abort", () => worker.postMessage({type: "cancel", target: id}));
    worker.postMessage({...message, id});
  });
  const loaded = call({type: "load", url});
  return {
    kind: "browser",
    async info() {
      const {spec} = await loaded;
      return facts(spec);
    },
    async generate(request, {onChunk, signal} = {}) {
      await loaded;
      return call({type: "generate", request}, {onChunk, signal});
    },
    async score(texts, {perToken = false, unit = "text", sort = false, signal} = {}) {
      await loaded;
      return call({type: "score", texts, options: {perToken, unit, sort}}, {signal});
    },
  };
}
