// The model's thread in a web export: loads the model and runs generate and score requests
// posted by browser.js, so that the page stays responsive while it draws. Messages in:
//   {id, type: "load", url} | {id, type: "generate", request} | {id, type: "score", texts,
//   options} | {type: "cancel", target: id}
// out: {id, type: "chunk", chunk} (generate, several) then {id, type: "result", result} or
// {id, type: "error", message, name}.
import {load} from "../tfcharrnn.js";
import {generate, score} from "./requests.js";

let model = null;
const cancelled = new Set();

self.onmessage = async ({data}) => {
  if (data.type === "cancel") { cancelled.add(data.target); return; }
  const {id} = data;
  try {
    let result;
    if (data.type === "load") {
      model = await load(new URL(data.url, self.location.href).href);
      result = {spec: model.spec};
    } else if (data.type === "generate") {
      const signal = {get aborted() { return cancelled.has(id); }};
      result = await generate(model, data.request,
                              (chunk) => self.postMessage({id, type: "chunk", chunk}), signal);
    } else if (data.type === "score") {
      result = score(model, data.texts, data.options);
    } else {
      throw new Error(`unknown request ${JSON.stringify(data.type)}`);
    }
    self.postMessage({id, type: "result", result});
  } catch (error) {
    self.postMessage({id, type: "error", message: error.message, name: error.name});
  } finally {
    cancelled.delete(id);
  }
};
