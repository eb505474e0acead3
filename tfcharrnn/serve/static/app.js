// The page: generate (streamed), surprise view, score panel, the model's facts. It talks to
// a backend (backend.js), never to the network directly.
import {legendGradient, MAX_LOSS, surpriseColour, tokenTitle} from "./surprise.js";

const $ = (id) => document.getElementById(id);

function setStatus(id, text, isError = false) {
  const element = $(id);
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}

// ---- the model's facts ----

function showFacts(facts) {
  const unit = facts.level === "word" ? "word" : "character";
  const parts = [
    `${facts.cell.toUpperCase()}, ${facts.layers} × ${facts.units}`,
    `${(facts.parameters / 1e6).toFixed(2)} M parameters`,
    `${plural(facts.vocab_size, facts.level === "word" ? "word" : "character")} in the vocabulary`,
    `${plural(facts.steps, "step")} trained`,
    facts.best_val_loss === null ? "not validated"
      : `best validation loss ${facts.best_val_loss.toFixed(4)} nats per ${unit}` +
        ` (${(facts.best_val_loss / Math.LN2).toFixed(3)} bits)`,
  ];
  if (facts.runs_in === "browser") parts.push("running in this browser");
  if (facts.level === "word") parts.push(tokenization(facts));
  $("facts").textContent = parts.join(" · ");
  $("facts").title = `back-end ${facts.backend}, precision ${facts.precision}, ` +
    `checkpoint ${facts.checkpoint}`;
}

// How this backend reads words: the server with NLTK; the browser (no NLTK) at spaces.
function tokenization(facts) {
  const lower = facts.lowercase ? ", lowercased" : "";
  return facts.tokenization === "spaces"
    ? `words are read between spaces: put spaces around punctuation, "my lord , i go ."${lower}`
    : `words are tokenized by NLTK${lower}`;
}

function applyLimits(facts) {
  document.body.dataset.level = facts.level;
  const limits = facts.limits;
  $("num_samples").max = limits.max_batch;
  $("length").max = limits.max_length;
  $("max_length").max = limits.max_length;
  const d = facts.defaults;
  for (const name of ["length", "min_length", "max_length", "top_k", "top_p", "num_samples"]) {
    $(name).value = d[name];
  }
  $("temperature").value = d.temperature;
  $("sampling").value = d.sampling;
  if (facts.level === "word") {
    $("prime").placeholder = "Type the beginning of a sentence, or leave it empty, and " +
      "press Generate (" + tokenization(facts) + ")";
  }
}

// ---- generate ----

function readRequest(level) {
  const number = (id) => Number($(id).value);
  if ($("new_seed").checked) $("seed").value = Math.floor(Math.random() * 2 ** 31);
  const request = {
    prime: $("prime").value,
    temperature: number("temperature"),
    sampling: $("sampling").value,
    seed: number("seed"),
    num_samples: number("num_samples"),
  };
  if (request.sampling === "top_k") request.top_k = number("top_k");
  if (request.sampling === "top_p") request.top_p = number("top_p");
  if (level === "word") {
    request.min_length = number("min_length");
    request.max_length = number("max_length");
  } else {
    request.length = number("length");
    const stop = $("stop_text").value.replace(/\\n/g, "\n").replace(/\\t/g, "\t");
    if (stop) request.stop = stop;
  }
  return request;
}

function sampleBoxes(count, prime, level) {
  const container = $("samples");
  container.replaceChildren();
  const boxes = [];
  for (let i = 0; i < count; i++) {
    const box = document.createElement("pre");
    box.className = "sample";
    box.dataset.sample = String(i);
    box.textContent = level === "char" ? prime : "";
    container.append(box);
    boxes.push(box);
  }
  return boxes;
}

function wireGenerate(backend, facts) {
  let controller = null;
  const generate = async () => {
    if (controller) return;
    const request = readRequest(facts.level);
    const boxes = sampleBoxes(request.num_samples, request.prime, facts.level);
    controller = new AbortController();
    $("generate").disabled = true;
    $("stop").disabled = false;
    setStatus("status", "generating…");
    const started = performance.now();
    let drawn = 0;                                  // characters received so far
    const rate = () => Math.round(drawn / ((performance.now() - started) / 1000));
    try {
      const result = await backend.generate(request, {
        signal: controller.signal,
        onChunk: (chunk) => {
          const box = boxes[chunk.sample];
          if (!box) return;
          if (chunk.text !== undefined) box.textContent = chunk.text;
          else {
            box.textContent += chunk.delta;
            drawn += chunk.delta.length;
            setStatus("status", `generating… ${rate().toLocaleString("en")} chars/s`);
          }
        },
      });
      result.texts.forEach((text, i) => { boxes[i].textContent = text; });
      const seconds = (performance.now() - started) / 1000;
      drawn = result.texts.reduce((n, t) => n + t.length - request.prime.length, 0);
      const what = facts.level === "word" ? plural(result.texts.length, "sentence")
        : `${plural(drawn, "character")} in ${seconds.toFixed(2)} s, ` +
          `${rate().toLocaleString("en")} chars/s`;
      const took = facts.level === "word" ? ` in ${seconds.toFixed(2)} s` : "";
      const short = result.short ? `; ${result.short} stayed shorter than ${request.min_length} words` : "";
      setStatus("status", `${what}${took} (seed ${request.seed})${short}`);
      $("use-generated").disabled = false;
    } catch (error) {
      if (error.name === "AbortError") {
        setStatus("status", `stopped (seed ${request.seed})`);
        $("use-generated").disabled = false;
      } else {
        setStatus("status", error.message, true);
      }
    } finally {
      controller = null;
      $("generate").disabled = false;
      $("stop").disabled = true;
    }
  };
  $("generate").addEventListener("click", generate);
  $("prime").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) generate();
  });
  $("stop").addEventListener("click", () => { if (controller) controller.abort(); });
  $("generate").disabled = false;
}

// ---- surprise view ----

function renderSurprise(results, level) {
  const view = $("surprise-view");
  view.replaceChildren();
  view.classList.toggle("words", level === "word");
  let total = 0;
  let count = 0;
  results.forEach((result, sentence) => {
    if (sentence > 0 && level === "word") view.append(document.createElement("br"));
    result.per_token.forEach((entry, i) => {
      const span = document.createElement("span");
      const isEnd = level === "word" && i === result.per_token.length - 1;
      span.textContent = isEnd ? "⏎" : entry.token;
      if (isEnd) span.className = "end";
      const colour = surpriseColour(entry.loss_nats);
      if (colour) span.style.backgroundColor = colour;
      span.dataset.loss = entry.loss_nats === null ? "" : String(entry.loss_nats);
      span.title = isEnd ? tokenTitle({...entry, token: "(end of sentence)"}) : tokenTitle(entry);
      view.append(span);
      if (level === "word" && !isEnd) view.append(" ");
      if (entry.loss_nats !== null) { total += entry.loss_nats; count += 1; }
    });
  });
  const unit = level === "word" ? "token" : "character";
  return count ? `mean loss ${(total / count).toFixed(3)} nats per ${unit} ` +
    `(${(total / count / Math.LN2).toFixed(3)} bits) over ${plural(count, unit)}` : "nothing to score";
}

function wireSurprise(backend, facts) {
  const legend = $("legend");
  legend.replaceChildren();
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.backgroundImage = legendGradient();
  const low = document.createElement("span");
  low.textContent = "expected";
  const high = document.createElement("span");
  high.textContent = `surprising (≥ ${MAX_LOSS} nats)`;
  legend.append(low, bar, high);

  $("use-generated").addEventListener("click", () => {
    const first = document.querySelector("#samples .sample");
    if (first) $("surprise-input").value = first.textContent;
  });
  $("surprise").addEventListener("click", async () => {
    const text = $("surprise-input").value;
    if (!text.trim()) { setStatus("surprise-status", "type or paste a text first", true); return; }
    setStatus("surprise-status", "scoring…");
    $("surprise").disabled = true;
    try {
      const unit = facts.level === "word" ? "sentence" : "text";
      const {results} = await backend.score([text], {perToken: true, unit});
      setStatus("surprise-status", renderSurprise(results, facts.level));
      legend.hidden = false;
    } catch (error) {
      setStatus("surprise-status", error.message, true);
    } finally {
      $("surprise").disabled = false;
    }
  });
}

// ---- score panel ----

function wireScore(backend) {
  $("score").addEventListener("click", async () => {
    const lines = $("score-input").value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (!lines.length) { setStatus("score-status", "type one text per line first", true); return; }
    setStatus("score-status", "scoring…");
    $("score").disabled = true;
    try {
      const {results} = await backend.score(lines, {sort: true});
      const body = $("score-results").querySelector("tbody");
      body.replaceChildren();
      results.forEach((r, i) => {
        const row = document.createElement("tr");
        const cells = [String(i + 1), r.text, r.log_prob_nats.toFixed(2), String(r.tokens),
          r.loss_nats_per_token === null ? "–" : r.loss_nats_per_token.toFixed(3),
          r.perplexity === null ? "–" : r.perplexity.toFixed(2)];
        for (const value of cells) {
          const cell = document.createElement("td");
          cell.textContent = value;
          row.append(cell);
        }
        row.children[1].className = "text";
        body.append(row);
      });
      $("score-results").hidden = false;
      setStatus("score-status", `${plural(results.length, "text")}, most probable first`);
    } catch (error) {
      setStatus("score-status", error.message, true);
    } finally {
      $("score").disabled = false;
    }
  });
}

// ---- start ----

export async function start(backend) {
  const temperature = $("temperature");
  const showTemperature = () => { $("temperature-value").value = Number(temperature.value).toFixed(2); };
  temperature.addEventListener("input", showTemperature);
  const sampling = $("sampling");
  const showSampling = () => { document.body.dataset.sampling = sampling.value; };
  sampling.addEventListener("change", showSampling);
  let facts;
  try {
    facts = await backend.info();
  } catch (error) {
    setStatus("status", `could not load the model: ${error.message}`, true);
    return;
  }
  applyLimits(facts);
  showTemperature();
  showSampling();
  showFacts(facts);
  wireGenerate(backend, facts);
  wireSurprise(backend, facts);
  wireScore(backend);
  document.body.dataset.ready = "true";
}
