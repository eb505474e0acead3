// tfcharrnn's runtime for the browser and Node: a model exported with
// `python -m tfcharrnn.export --format=web`, run one token at a time in plain JavaScript.
//
//   import {load} from "./tfcharrnn.js";
//   const model = await load("model.json");
//   const text = await model.generate({prime: "ROMEO:", length: 200, temperature: 0.8, seed: 1,
//                                      onToken: (piece) => console.log(piece)});
//   const {logProbNats, tokens, perToken} = model.score("To be, or not to be");
//   let {logProbs, state} = model.step(model.encode("T")[0], model.initialState());
//
// The arithmetic is the Python model's (`models/cells/`, `models/inference.py`) in float64
// on float32 (or float16) weights; the draws are `decoding/sampling.py`'s Gumbel-max with the
// counter-based numbers of `decoding/noise.py`, so a seed gives the same text here, in every
// browser, and (up to float round-off deciding a near tie) in `python -m tfcharrnn.sample`.
// No dependencies: nothing here is from a third party.

export const FORMAT = "tfcharrnn-web";
export const FORMAT_VERSION = 1;
export const MAX_ATTEMPTS = 20;               // word level: attempts at a long enough sentence

// ---- loading ----

class LoadError extends Error {}

async function fetchOk(url, what, fetchFn) {
  let response;
  try {
    response = await fetchFn(url);
  } catch (error) {
    throw new LoadError(`could not fetch ${what} (${url}): ${error.message}; serve the export ` +
                        `folder over HTTP (e.g. python -m http.server) and open it from there`);
  }
  if (!response.ok) {
    throw new LoadError(`could not fetch ${what} (${url}): ${response.status} ` +
                        `${response.statusText}; the export folder is incomplete: export it again`);
  }
  return response;
}

function checkDescription(spec, url) {
  if (!spec || typeof spec !== "object" || spec.format !== FORMAT) {
    throw new LoadError(`${url} is not a tfcharrnn web export (no "format": "${FORMAT}"); ` +
                        `make one with python -m tfcharrnn.export --format=web`);
  }
  if (spec.format_version !== FORMAT_VERSION) {
    throw new LoadError(`${url} has format version ${spec.format_version}, and this runtime ` +
                        `reads version ${FORMAT_VERSION}; use the tfcharrnn.js exported with ` +
                        `it, or export the run again`);
  }
  const t = spec.topology;
  if (t && !Object.hasOwn(CELLS, t.cell)) {
    throw new LoadError(`${url} is a ${t.cell} model, a cell this runtime does not run ` +
                        `(it runs ${Object.keys(CELLS).join(", ")}); use the tfcharrnn.js ` +
                        `exported with the model`);
  }
  const ok = t && t.layers > 0 && t.units > 0 &&
    spec.vocabulary && Array.isArray(spec.vocabulary.tokens) &&
    spec.vocabulary.tokens.length === t.vocab_size && Array.isArray(spec.weightsManifest);
  if (!ok) {
    throw new LoadError(`${url} is damaged (its topology, vocabulary or weightsManifest is ` +
                        `missing or inconsistent); export the run again`);
  }
}

function float16ToFloat32(bits) {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) out[i] = sign * fraction * 2 ** -24;
    else if (exponent === 31) out[i] = fraction ? NaN : sign * Infinity;
    else out[i] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

// The manifest's weights from the shards' bytes: {name: {shape, values: Float32Array}}.
function readWeights(manifest, buffers, url) {
  const weights = {};
  manifest.forEach((group, g) => {
    const total = buffers[g].reduce((n, b) => n + b.byteLength, 0);
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const b of buffers[g]) { bytes.set(new Uint8Array(b), at); at += b.byteLength; }
    let offset = 0;
    const needed = group.weights.reduce((n, w) => n + w.shape.reduce((a, d) => a * d, 1) *
      (w.quantization && w.quantization.dtype === "float16" ? 2 : 4), 0);
    if (needed !== total) {
      throw new LoadError(`the weight shards of ${url} hold ${total.toLocaleString("en")} ` +
                          `bytes, and its weightsManifest needs ${needed.toLocaleString("en")}: ` +
                          `a shard is damaged or from another export; export the run again`);
    }
    for (const w of group.weights) {
      const size = w.shape.reduce((a, d) => a * d, 1);
      const half = w.quantization && w.quantization.dtype === "float16";
      const width = half ? 2 : 4;
      const copy = bytes.slice(offset, offset + size * width).buffer;   // aligned
      const values = half ? float16ToFloat32(new Uint16Array(copy)) : new Float32Array(copy);
      weights[w.name] = {shape: w.shape, values};
      offset += size * width;
    }
  });
  return weights;
}

// Loads an export: `url` of its model.json (shards are fetched beside it). Rejects with a
// one-line message naming what is missing or damaged.
export async function load(url = "model.json", {fetch: fetchFn = globalThis.fetch} = {}) {
  const base = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  const response = await fetchOk(base.href, "model.json", fetchFn);
  let spec;
  try {
    spec = JSON.parse(await response.text());
  } catch (error) {
    throw new LoadError(`${url} is not valid JSON (${error.message}); the export is damaged: ` +
                        `export the run again`);
  }
  checkDescription(spec, url);
  const buffers = await Promise.all(spec.weightsManifest.map((group) => Promise.all(
    group.paths.map(async (path) => {
      const shard = await fetchOk(new URL(path, base).href, `weight shard ${path}`, fetchFn);
      return shard.arrayBuffer();
    }))));
  return new Model(spec, readWeights(spec.weightsManifest, buffers, url));
}

// ---- counter-based random numbers (decoding/noise.py) ----

function mix(x) {                         // lowbias32
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function combine(a, b) {
  return mix((a ^ mix((b + 0x9e3779b9) >>> 0)) >>> 0);
}

// The key of row `row` of a request with this seed (any int64: a Number or a BigInt).
export function rowKey(seed, row) {
  const s = BigInt.asUintN(64, BigInt(seed));
  const low = Number(s & 0xffffffffn);
  const high = Number(s >> 32n);
  return combine(combine(low, high), row >>> 0);
}

// u[v] in (0, 1) for token `counter` of the stream with `key`, into `out` (length V).
export function uniform(key, counter, out) {
  const tokenKey = combine(key, counter >>> 0);
  for (let v = 0; v < out.length; v++) {
    out[v] = ((combine(tokenKey, v) >>> 9) + 0.5) * 2 ** -23;
  }
  return out;
}

// seed + 7919 x attempt, wrapped to int64 (jobs.attempt_seed).
export function attemptSeed(seed, attempt) {
  return BigInt.asIntN(64, BigInt(seed) + 7919n * BigInt(attempt));
}

// ---- choosing the next token (sampling.choose_next) ----

function argmax(values) {
  let best = 0;
  for (let v = 1; v < values.length; v++) if (values[v] > values[best]) best = v;
  return best;
}

// The logit below which a token leaves row's top-k and nucleus (sampling.filtered).
function threshold(scaled, topK, topP) {
  const ranked = Float64Array.from(scaled).sort().reverse();
  let kth = -Infinity;
  if (topK > 0) kth = ranked[Math.min(topK, ranked.length) - 1];
  let nucleus = -Infinity;
  if (topP < 1) {
    const top = ranked[0];
    let sum = 0;
    for (const r of ranked) sum += Math.exp(r - top);
    let before = 0;
    nucleus = ranked[0];
    for (const r of ranked) {
      if (!(before < topP)) break;
      nucleus = r;
      before += Math.exp(r - top) / sum;
    }
  }
  return Math.max(kth, nucleus);
}

// settings: {greedy, temperature, topK, topP}; u: the stream's numbers for this token;
// banned: null or a Uint8Array [V] of tokens never drawn. Returns the token id.
export function chooseNext(logits, settings, u, banned = null, scratch = null) {
  const V = logits.length;
  const scaled = scratch || new Float64Array(V);
  for (let v = 0; v < V; v++) scaled[v] = banned && banned[v] ? -Infinity : logits[v];
  if (settings.greedy) return argmax(scaled);
  const temperature = settings.temperature;
  for (let v = 0; v < V; v++) scaled[v] /= temperature;
  const cut = (settings.topK > 0 || settings.topP < 1)
    ? threshold(scaled, settings.topK, settings.topP) : -Infinity;
  let best = -1;
  let bestValue = -Infinity;
  for (let v = 0; v < V; v++) {
    if (scaled[v] < cut || scaled[v] === -Infinity) continue;
    const value = scaled[v] - Math.log(-Math.log(u[v]));
    if (best < 0 || value > bestValue) { best = v; bestValue = value; }
  }
  return best < 0 ? argmax(scaled) : best;
}

// The settings of a generate() call: {greedy, temperature, topK, topP}, checked.
export function settingsOf({sampling = "sample", temperature = 1, topK = 10, topP = 0.9} = {}) {
  const methods = ["sample", "top_k", "top_p", "argmax"];
  if (!methods.includes(sampling)) {
    throw new Error(`unknown sampling ${JSON.stringify(sampling)}; use one of ${methods.join(", ")}`);
  }
  if (sampling !== "argmax" && !(temperature > 0)) {
    throw new Error(`temperature must be positive with sampling=${sampling}, got ` +
                    `${temperature}; use sampling=argmax for greedy text`);
  }
  if (sampling === "top_k" && !(Number.isInteger(topK) && topK >= 1)) {
    throw new Error(`topK must be a whole number >= 1, got ${topK}`);
  }
  if (sampling === "top_p" && !(topP > 0 && topP <= 1)) {
    throw new Error(`topP must be in (0, 1], got ${topP}`);
  }
  return {greedy: sampling === "argmax", temperature: sampling === "argmax" ? 1 : temperature,
          topK: sampling === "top_k" ? topK : 0, topP: sampling === "top_p" ? topP : 1};
}

// ---- the cells (models/cells/, one entry each) ----

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

// gates: G, the input projection is [G*H]; states: tensors per layer (h; the LSTM h and c);
// inputBias: the bias of the input projection; weights: the layer's other parameters
// (W_* are matrices); update(model, p, z, state, at): one step of the layer whose state
// starts at state[at], from z = x W_input + input bias [G*H] (a scratch buffer it may change).
const CELLS = {
  rnn: {gates: 1, states: 1, inputBias: "b_hidden", weights: ["W_hidden", "b_hidden"],
    update(model, p, z, state, at) {
      const h = state[at];
      addProduct(z, h, p.W_hidden);
      for (let j = 0; j < model.units; j++) h[j] = Math.tanh(z[j]);
    }},
  gru: {gates: 3, states: 1, inputBias: "b_input", weights: ["W_hidden", "b_hidden", "b_input"],
    update(model, p, z, state, at) {
      const H = model.units;
      const h = state[at];
      const zh = model._zh;           // h W_hidden + b_hidden: the reset gate scales it alone
      for (let j = 0; j < 3 * H; j++) zh[j] = p.b_hidden[j];
      addProduct(zh, h, p.W_hidden);
      for (let j = 0; j < H; j++) {
        const u = sigmoid(z[j] + zh[j]);
        const r = sigmoid(z[H + j] + zh[H + j]);
        const n = Math.tanh(z[2 * H + j] + r * zh[2 * H + j]);
        h[j] = u * h[j] + (1 - u) * n;
      }
    }},
  lstm: {gates: 4, states: 2, inputBias: "b_hidden", weights: ["W_hidden", "b_hidden"],
    update(model, p, z, state, at) {
      const H = model.units;
      const h = state[at];
      const c = state[at + 1];
      addProduct(z, h, p.W_hidden);
      for (let j = 0; j < H; j++) {
        c[j] = sigmoid(z[H + j]) * c[j] + sigmoid(z[j]) * Math.tanh(z[2 * H + j]);
        h[j] = sigmoid(z[3 * H + j]) * Math.tanh(c[j]);
      }
    }},
  // minGRU (Feng et al. 2024): the gates read x only, h' = (1 - z) h + z h~.
  mingru: {gates: 2, states: 1, inputBias: "b_input", weights: ["b_input"],
    update(model, p, z, state, at) {
      const H = model.units;
      const h = state[at];
      for (let j = 0; j < H; j++) {
        const u = sigmoid(z[j]);
        h[j] = (1 - u) * h[j] + u * z[H + j];
      }
    }},
};

// A weight matrix W [I, J] (row-major in the shards), kept transposed, T [J, I]: each output
// is then a dot product over contiguous memory, summed in a register, instead of a load and
// a store of out[j] for every multiply.
function matrix(values, [I, J]) {
  const T = new Float32Array(I * J);
  for (let i = 0; i < I; i++) {
    for (let j = 0; j < J; j++) T[j * I + i] = values[i * J + j];
  }
  return {I, J, T};
}

// out[j] += sum_i x[i] * W[i, j], x of length I. Four outputs at a time, each with two
// partial sums: every x[i] loaded once for four rows, eight independent additions in flight
// (V8 does not vectorize; in Node 20 on a Xeon, [512, 1,024]: 4.2 GFLOP/s, against 2.4 for
// one output at a time and 1.6 for the row-major out[j] += x[i] W[i, j] loop).
function addProduct(out, x, m) {
  const {I, J, T} = m;
  const I2 = I - (I & 1);
  let j = 0;
  for (; j + 4 <= J; j += 4) {
    const r0 = j * I;
    const r1 = r0 + I;
    const r2 = r1 + I;
    const r3 = r2 + I;
    let a = 0, b = 0, c = 0, d = 0, a2 = 0, b2 = 0, c2 = 0, d2 = 0;
    let i = 0;
    for (; i < I2; i += 2) {
      const x0 = x[i];
      const x1 = x[i + 1];
      a += x0 * T[r0 + i];
      b += x0 * T[r1 + i];
      c += x0 * T[r2 + i];
      d += x0 * T[r3 + i];
      a2 += x1 * T[r0 + i + 1];
      b2 += x1 * T[r1 + i + 1];
      c2 += x1 * T[r2 + i + 1];
      d2 += x1 * T[r3 + i + 1];
    }
    if (i < I) {
      const x0 = x[i];
      a += x0 * T[r0 + i];
      b += x0 * T[r1 + i];
      c += x0 * T[r2 + i];
      d += x0 * T[r3 + i];
    }
    out[j] += a + a2;
    out[j + 1] += b + b2;
    out[j + 2] += c + c2;
    out[j + 3] += d + d2;
  }
  for (; j < J; j++) {
    const row = j * I;
    let s = 0;
    for (let i = 0; i < I; i++) s += x[i] * T[row + i];
    out[j] += s;
  }
}

// out[j] += W[row, j] (a one-hot input).
function addRow(out, m, row) {
  for (let j = 0; j < m.J; j++) out[j] += m.T[j * m.I + row];
}

// ---- word-level text (README "In the browser") ----

const LEADING = /^(?:"|``|[(\[{]|'(?=..))/;        // a lone "'t" keeps its quote, as NLTK's
const TRAILING = /(?:"|''|[,;:!?)\]}%]|\.\.\.|')$/;
const CLITIC = /^(.+?)(n't|'s|'m|'d|'ll|'re|'ve)$/i;
const SPLIT_WORD = /^(can)(not)$|^(gon)(na)$|^(got)(ta)$|^(wan)(na)$|^(lem)(me)$|^(gim)(me)$|^(d)('ye)$|^(more)('n)$/i;

// A sentence -> word tokens, close to NLTK's NLTKWordTokenizer without its data: split at
// white space and "--", then punctuation split off the ends of a word (quotes become `` and
// ''), the clitics n't 's 'm 'd 'll 're 've and NLTK's split words (can not, gon na, ...),
// and a period ending the sentence. Text already written as NLTK tokens separated by spaces
// (the SavedModel's convention) comes back as it is. Abbreviations and the other cases NLTK
// treats specially are not.
export function tokenizeWords(sentence) {
  const words = [];
  const parts = sentence.split(/\s+|(--)/).filter(Boolean);
  parts.forEach((part, index) => {
    let word = part;
    const before = [];
    const after = [];
    let m;
    for (;;) {
      if (index === parts.length - 1 && word.length > 1 && /[^.]\.$/.test(word)) {
        after.unshift(".");
        word = word.slice(0, -1);
        continue;
      }
      if (word.length > 1 && (m = word.match(TRAILING)) && m[0] !== word) {
        after.unshift(m[0] === '"' ? "''" : m[0]);
        word = word.slice(0, -m[0].length);
        continue;
      }
      break;
    }
    while (word.length > 1 && (m = word.match(LEADING))) {
      before.push(m[0] === '"' ? "``" : m[0]);
      word = word.slice(m[0].length);
    }
    if ((m = word.match(SPLIT_WORD))) words.push(...before, ...m.slice(1).filter(Boolean), ...after);
    else if ((m = word.match(CLITIC))) words.push(...before, m[1], m[2], ...after);
    else words.push(...before, word, ...after);
  });
  return words;
}

const CLOSING = /^(?:[.,;:!?%)\]}]|''|'[a-z]*|n't|\.\.\.)$/i;
const OPENING = /^(?:[(\[{$#]|``)$/;

// NLTK-style tokens -> text, roughly as TreebankWordDetokenizer joins them.
export function detokenize(words) {
  let text = "";
  let glue = true;
  for (const word of words) {
    const shown = word === "``" || word === "''" ? '"' : word;
    text += (glue || CLOSING.test(word) ? "" : " ") + shown;
    glue = OPENING.test(word);
  }
  return text;
}

// ---- the model ----

export class Model {
  // spec: model.json's contents; weights: {name: {shape, values: Float32Array}};
  // firstLayerTable: false to multiply the first layer's input each step (tests).
  constructor(spec, weights, {firstLayerTable = true} = {}) {
    const t = spec.topology;
    this.spec = spec;
    this.cell = t.cell;
    this.layers = t.layers;
    this.units = t.units;
    this.vocab = spec.vocabulary;
    this.level = this.vocab.level;
    this.tokens = this.vocab.tokens;
    this.vocabSize = this.tokens.length;
    this.facts = spec.facts || {};
    this.kind = CELLS[t.cell];
    this.gates = this.kind.gates;
    this.statesPerLayer = this.kind.states;
    const need = (name) => {
      if (!weights[name]) {
        throw new LoadError(`the export has no weight ${name}; it is damaged: export it again`);
      }
      return weights[name].values;
    };
    this.embedding = weights.embedding ? weights.embedding.values : null;
    this.embeddingSize = weights.embedding ? weights.embedding.shape[1] : 0;
    this.params = [];
    for (let l = 0; l < t.layers; l++) {
      const m = (name) => matrix(need(`layer_${l}/${name}`), weights[`layer_${l}/${name}`].shape);
      const p = {W_input: m("W_input")};
      for (const name of this.kind.weights) {
        p[name] = name.startsWith("W_") ? m(name) : need(`layer_${l}/${name}`);
      }
      this.params.push(p);
    }
    this.W_softmax = matrix(need("softmax/W_softmax"), weights["softmax/W_softmax"].shape);
    this.b_softmax = need("softmax/b_softmax");
    this._index = new Map(this.tokens.map((token, i) => [token, i]));
    this._firstTable = firstLayerTable ? this._projectFirstLayer() : null;
    const G = this.gates * this.units;
    this._z = new Float64Array(G);        // scratch: a layer's input-side pre-activations
    this._zh = new Float64Array(G);       // and the GRU's recurrent ones
    this._x = new Float64Array(Math.max(this.embeddingSize, this.units));
    this._logits = new Float64Array(this.vocabSize);
    this._u = new Float64Array(this.vocabSize);
    this._scratch = new Float64Array(this.vocabSize);
    if (this.level === "word") {
      const s = this.vocab.special_tokens;
      this.unknownId = s.unknown;
      this.startId = s.start;
      this.endId = s.end;
      this.banned = new Uint8Array(this.vocabSize);
      this.banned[s.unknown] = 1;
      this.banned[s.start] = 1;
    } else {
      this.banned = null;
    }
  }

  // The first layer's input projection of every token, x W_input + input bias [V, G*H]:
  // a row lookup per step instead of a product (as models/stacked.first_projection does),
  // when the table is small (char level); word level multiplies each step.
  _projectFirstLayer() {
    const V = this.vocabSize;
    const G = this.gates * this.units;
    if (V * G > 4 * 1024 * 1024) return null;
    const p = this.params[0];
    const bias = p[this.kind.inputBias];
    const table = new Float64Array(V * G);
    const row = new Float64Array(G);
    for (let v = 0; v < V; v++) {
      for (let j = 0; j < G; j++) row[j] = bias[j];
      if (this.embedding) {
        addProduct(row, this.embedding.subarray(v * this.embeddingSize,
                                                (v + 1) * this.embeddingSize), p.W_input);
      } else {
        addRow(row, p.W_input, v);
      }
      table.set(row, v * G);
    }
    return table;
  }

  // The zero state: per layer h (and c), Float64Array [H] each.
  initialState() {
    const state = [];
    for (let i = 0; i < this.layers * this.statesPerLayer; i++) {
      state.push(new Float64Array(this.units));
    }
    return state;
  }

  // One token: the log-probabilities of the next [V] and the new state (`state` is kept).
  step(tokenId, state) {
    const next = state.map((s) => Float64Array.from(s));
    const logits = this._advance(tokenId, next);
    return {logProbs: logSoftmax(logits), state: next};
  }

  // Feeds tokenId into `state` (changed in place); returns the logits of the next token
  // (a buffer reused by the next call).
  _advance(tokenId, state) {
    if (!(tokenId >= 0 && tokenId < this.vocabSize)) {
      throw new Error(`token id ${tokenId} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    const H = this.units;
    const G = this.gates * H;
    const z = this._z;
    let x = null;
    for (let l = 0; l < this.layers; l++) {
      const p = this.params[l];
      // z = x W_input + input bias
      if (l === 0 && this._firstTable) {
        z.set(this._firstTable.subarray(tokenId * G, (tokenId + 1) * G));
      } else {
        const bias = p[this.kind.inputBias];
        for (let j = 0; j < G; j++) z[j] = bias[j];
        if (l > 0) addProduct(z, x, p.W_input);
        else if (this.embedding) {
          addProduct(z, this.embedding.subarray(tokenId * this.embeddingSize,
                                                (tokenId + 1) * this.embeddingSize), p.W_input);
        } else addRow(z, p.W_input, tokenId);
      }
      const at = l * this.statesPerLayer;
      this.kind.update(this, p, z, state, at);
      x = state[at];
    }
    const logits = this._logits;
    for (let v = 0; v < this.vocabSize; v++) logits[v] = this.b_softmax[v];
    addProduct(logits, x, this.W_softmax);
    return logits;
  }

  // ---- text <-> ids ----

  // Tokens the vocabulary lacks in `text` (char level: characters; word level: words, which
  // would be read as UNKNOWN_TOKEN), each once, in order of appearance.
  missing(text) {
    const seen = new Set();
    for (const token of this._units(text)) {
      if (!this._index.has(token)) seen.add(token);
    }
    return [...seen];
  }

  // Char level: the characters (lowercased when the run lowercased). Word level: the words
  // (`tokenizeWords`, lowercased when the run lowercased).
  _units(text) {
    const lowered = this.vocab.lowercase ? text.toLowerCase() : text;
    if (this.level === "char") return Array.from(lowered);
    return tokenizeWords(lowered);
  }

  // Text -> ids. Char level: one per character (an unknown one is an error naming it).
  // Word level: the text as one sentence, SENTENCE_START w1 ... wn SENTENCE_END, unknown
  // words as UNKNOWN_TOKEN (as `score` and the SavedModel read a text).
  encode(text) {
    const units = this._units(text);
    if (this.level === "char") {
      const missing = this.missing(text);
      if (missing.length) throw new Error(missingMessage(missing, "character", "the text"));
      return units.map((c) => this._index.get(c));
    }
    return [this.startId, ...units.map((w) => this._wordId(w)), this.endId];
  }

  _wordId(word) {
    return this._index.has(word) ? this._index.get(word) : this.unknownId;
  }

  // The ids a generation starts from (jobs.prime_ids): the prime's, or where the run starts
  // without one. Word level: its sentences (a new one after each ". ! ?" token: Punkt's
  // untrained rule), each SENTENCE_START ... SENTENCE_END, the last left open.
  primeIds(prime) {
    if (!prime) return this.vocab.start_ids.slice();
    const missing = this.missing(prime);
    if (missing.length) {
      throw new Error(missingMessage(missing, this.level === "char" ? "character" : "word",
                                     "the prime"));
    }
    if (this.level === "char") return this.encode(prime);
    const units = this._units(prime);
    const ids = [this.startId];
    units.forEach((word, i) => {
      ids.push(this._wordId(word));
      if (/^[.!?]$/.test(word) && i < units.length - 1) ids.push(this.endId, this.startId);
    });
    return ids;
  }

  // ---- score ----

  // {logProbNats, tokens, perToken: [{token, lossNats, unknown?}]}, as `python -m
  // tfcharrnn.score` scores one text: char level, the first character is read and the rest
  // scored (its lossNats is null); word level, the sentence(s) wrapped in SENTENCE_START ...
  // SENTENCE_END, every word and SENTENCE_END scored.
  score(text) {
    const ids = this.encode(text);
    const shown = this._units(text);
    if (this.level === "word") shown.push("SENTENCE_END");
    const state = this.initialState();
    const losses = [];
    for (let t = 0; t + 1 < ids.length; t++) {
      const logits = this._advance(ids[t], state);
      losses.push(-logSoftmax(logits)[ids[t + 1]]);
    }
    const total = losses.reduce((a, b) => a + b, 0);
    const perToken = [];
    if (this.level === "char") {
      shown.forEach((c, i) => perToken.push({token: c, lossNats: i === 0 ? null : losses[i - 1]}));
    } else {
      shown.forEach((token, i) => {
        const entry = {token, lossNats: losses[i]};
        if (ids[i + 1] === this.unknownId) entry.unknown = true;
        perToken.push(entry);
      });
    }
    return {logProbNats: -total, tokens: losses.length, perToken};
  }

  // ---- generate ----

  // The prime, then `length` drawn tokens (word level: the drawn words after a space each,
  // a newline where a sentence ends), as the SavedModel's generate and (char level)
  // `python -m tfcharrnn.sample` draw them: row `row` of the seed, token j with the numbers
  // of (key, j). onToken(piece) gets each token's text as it is drawn; `stop` (char level)
  // ends the text before its first occurrence. Every `yieldEvery` tokens it awaits
  // `pause()` (default: a macrotask), so a worker can read a cancel message in between.
  async generate({prime = "", length = 500, temperature = 1, sampling = "sample", topK = 10,
                  topP = 0.9, seed = 0, stop = "", row = 0, onToken = null, signal = null,
                  yieldEvery = 64, pause = nextTurn} = {}) {
    const settings = settingsOf({sampling, temperature, topK, topP});
    checkCount("length", length);
    const key = rowKey(seed, row);
    const state = this.initialState();
    let logits = null;
    for (const id of this.primeIds(prime)) logits = this._advance(id, state);
    let text = prime;
    const cut = new StopAt(stop);
    for (let j = 0; j < length && !cut.done; j++) {
      const token = chooseNext(logits, settings, uniform(key, j, this._u), this.banned,
                               this._scratch);
      logits = this._advance(token, state);
      const shown = this.level === "char" ? this.tokens[token]
        : token === this.endId ? "\n" : ` ${this.tokens[token]}`;
      const piece = cut.feed(shown) + (j === length - 1 || cut.done ? cut.flush() : "");
      if (piece) {
        text += piece;
        if (onToken) onToken(piece);
      }
      if ((j + 1) % yieldEvery === 0) {
        await pause();
        if (signal && signal.aborted) throw abortError();
      }
    }
    return text;
  }

  // Word level: one whole sentence (jobs.SentenceJob): from SENTENCE_START and the prime's
  // words, drawn to SENTENCE_END or maxLength tokens; one shorter than minLength words is
  // drawn again (attempt a with the seed + 7919 a), at most MAX_ATTEMPTS times, and the
  // longest kept. onText(words so far, detokenized) as it grows. -> {text, words (how
  // many), ended (reached SENTENCE_END), tokens (the words)}.
  async sentence({prime = "", minLength = 1, maxLength = 50, temperature = 1,
                  sampling = "sample", topK = 10, topP = 0.9, seed = 0, row = 0, onText = null,
                  signal = null, yieldEvery = 16, pause = nextTurn} = {}) {
    if (this.level !== "word") throw new Error("sentence() is for word-level models; use generate()");
    const settings = settingsOf({sampling, temperature, topK, topP});
    checkCount("maxLength", maxLength);
    const primeIds = this.primeIds(prime);
    const primeWords = primeIds.filter((id) => id !== this.startId && id !== this.endId);
    const show = (ids) => detokenize(ids.map((id) => this.tokens[id]));
    let best = null;
    let bestEnded = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const key = rowKey(attemptSeed(seed, attempt), row);
      const state = this.initialState();
      let logits = null;
      for (const id of primeIds) logits = this._advance(id, state);
      const words = [];
      let ended = false;
      for (let j = 0; j < maxLength; j++) {
        const token = chooseNext(logits, settings, uniform(key, j, this._u), this.banned,
                                 this._scratch);
        if (token === this.endId) { ended = true; break; }
        words.push(token);
        logits = this._advance(token, state);
        if ((j + 1) % yieldEvery === 0) {
          if (onText) onText(show(primeWords.concat(words)));
          await pause();
          if (signal && signal.aborted) throw abortError();
        }
      }
      const all = primeWords.concat(words);
      if (best === null || all.length > best.length) { best = all; bestEnded = ended; }
      if (onText) onText(show(best));
      if (all.length >= minLength) break;
    }
    return {text: show(best), words: best.length, ended: bestEnded,
            tokens: best.map((id) => this.tokens[id])};
  }
}

// ---- helpers ----

function logSoftmax(logits) {
  let top = -Infinity;
  for (const l of logits) if (l > top) top = l;
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - top);
  const norm = top + Math.log(sum);
  return Float64Array.from(logits, (l) => l - norm);
}

function missingMessage(missing, kind, where) {
  const shown = missing.slice(0, 20).map((c) => JSON.stringify(c)).join(" ");
  return `${where} has ${missing.length} ${kind}(s) the model's vocabulary lacks: ${shown}; ` +
    `remove them from ${where}`;
}

function checkCount(name, value) {
  if (!(Number.isInteger(value) && value >= 1)) {
    throw new Error(`${name} must be a whole number >= 1, got ${value}`);
  }
}

function abortError() {
  const error = new Error("stopped");
  error.name = "AbortError";
  return error;
}

// A macrotask turn (lets a worker's messages in): setImmediate in Node, else a
// MessageChannel message, which is not clamped to 4 ms as a nested setTimeout is.
let channel = null;
export function nextTurn() {
  if (typeof setImmediate === "function") return new Promise((r) => setImmediate(r));
  if (typeof MessageChannel === "undefined") return new Promise((r) => setTimeout(r, 0));
  if (!channel) {
    channel = new MessageChannel();
    channel.queue = [];
    channel.port1.onmessage = () => channel.queue.shift()();
  }
  return new Promise((resolve) => { channel.queue.push(resolve); channel.port2.postMessage(0); });
}

// Cuts a text at the first occurrence of `stop` (sampling.StopAt): feed(piece) returns what
// is final so far, holding back what may begin the marker.
export class StopAt {
  constructor(stop) { this.stop = stop || ""; this.pending = ""; this.done = false; }
  feed(piece) {
    if (this.done) return "";
    if (!this.stop) return piece;
    this.pending += piece;
    const at = this.pending.indexOf(this.stop);
    if (at >= 0) {
      this.done = true;
      const out = this.pending.slice(0, at);
      this.pending = "";
      return out;
    }
    const cut = Math.max(this.pending.length - (this.stop.length - 1), 0);
    const out = this.pending.slice(0, cut);
    this.pending = this.pending.slice(cut);
    return out;
  }
  flush() {
    const out = this.done ? "" : this.pending;
    this.pending = "";
    return out;
  }
}
