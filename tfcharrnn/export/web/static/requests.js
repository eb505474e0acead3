// The page's requests answered by a model in this thread (worker.js runs them): the same
// bodies and answers as the server's JSON API (README "The JSON API"), so app.js cannot tell
// where the model runs. Plain functions of a loaded `Model`, tested in Node.
import {nextTurn} from "../tfcharrnn.js";

// GET /v1/model's answer, from an export's model.json.
export function facts(spec) {
  const t = spec.topology;
  const vocab = spec.vocabulary;
  const f = spec.facts || {};
  const page = spec.page || {};
  const out = {
    cell: t.cell, backend: f.backend, layers: t.layers, units: t.units,
    embedding_size: t.embedding_size, parameters: f.parameters, precision: f.precision,
    level: vocab.level, vocab_size: vocab.tokens.length, lowercase: vocab.lowercase,
    steps: f.steps, best_val_loss: f.best_val_loss, checkpoint: f.checkpoint,
    vocabulary: vocab.tokens, limits: page.limits, defaults: page.defaults,
    runs_in: "browser", weights_dtype: f.weights_dtype,
    // Word level: no NLTK here: text is read as its tokens separated by spaces.
    tokenization: vocab.level === "word" ? "spaces" : "characters",
  };
  if (vocab.level === "word") {
    const s = vocab.special_tokens;
    out.special_tokens = {unknown: vocab.tokens[s.unknown], start: vocab.tokens[s.start],
                          end: vocab.tokens[s.end]};
  }
  return out;
}

function checkLimits(model, request) {
  const limits = (model.spec.page || {}).limits || {};
  const n = request.num_samples ?? 1;
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`num_samples must be a whole number >= 1, got ${n}`);
  if (limits.max_batch && n > limits.max_batch) {
    throw new Error(`num_samples=${n} is above this page's limit of ${limits.max_batch}; ask for fewer`);
  }
  const length = model.level === "word" ? request.max_length : request.length;
  const name = model.level === "word" ? "max_length" : "length";
  if (limits.max_length && length > limits.max_length) {
    throw new Error(`${name}=${length} is above this page's limit of ${limits.max_length}; ask for less`);
  }
}

// POST /v1/generate: {texts} (word level also {short}); onChunk({sample, delta}) at
// character level, onChunk({sample, text}) (the sentence so far) at word level.
export async function generate(model, request, onChunk = () => {}, signal = null) {
  const defaults = (model.spec.page || {}).defaults || {};
  const r = {...defaults, ...request};
  checkLimits(model, r);
  const common = {prime: r.prime, temperature: r.temperature, sampling: r.sampling,
                  topK: r.top_k, topP: r.top_p, seed: r.seed, signal};
  const texts = [];
  let short = 0;
  for (let i = 0; i < (r.num_samples ?? 1); i++) {
    if (model.level === "word") {
      const sentence = await model.sentence({
        ...common, row: i, minLength: r.min_length, maxLength: r.max_length,
        onText: (text) => onChunk({sample: i, text})});
      if (sentence.words < r.min_length) short += 1;
      texts.push(sentence.text);
      continue;
    }
    let pending = "";
    const flush = () => { if (pending) onChunk({sample: i, delta: pending}); pending = ""; };
    texts.push(await model.generate({
      ...common, row: i, length: r.length, stop: r.stop,
      onToken: (piece) => { pending += piece; },
      pause: () => { flush(); return nextTurn(); }}));
    flush();
  }
  return model.level === "word" ? {texts, short} : {texts};
}

// A text's sentences: split after ". ! ?" and white space (Punkt's untrained rule).
export function sentences(text) {
  return text.split(/(?<=[.!?])\s+/).map((s) => s.trim()).filter(Boolean);
}

// POST /v1/score: {results}, each as `python -m tfcharrnn.score` prints it.
export function score(model, texts, {perToken = false, unit = "text", sort = false} = {}) {
  if (!texts.length) throw new Error("nothing to score: give at least one text");
  const all = unit === "sentence" ? texts.flatMap(sentences) : texts;
  const results = all.map((text) => {
    const s = model.score(text);
    const result = {
      text, log_prob_nats: s.logProbNats, tokens: s.tokens,
      loss_nats_per_token: s.tokens ? -s.logProbNats / s.tokens : null,
      perplexity: s.tokens ? Math.exp(-s.logProbNats / s.tokens) : null,
    };
    if (perToken) {
      result.per_token = s.perToken.map((e) => (
        e.unknown ? {token: e.token, loss_nats: e.lossNats, unknown: true}
          : {token: e.token, loss_nats: e.lossNats}));
    }
    return result;
  });
  if (sort) results.sort((a, b) => b.log_prob_nats - a.log_prob_nats);
  return {results};
}
