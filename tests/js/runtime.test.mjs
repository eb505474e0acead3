// The web export's runtime (tfcharrnn/export/web/tfcharrnn.js) and the page's requests over
// it, in Node: the cells against a plain transcription of their equations, the draws, the
// text helpers. (Equality with Python is tests/test_web_export.py's, through web_check.mjs.)
import assert from "node:assert/strict";
import {test} from "node:test";

import {
  Model, StopAt, attemptSeed, chooseNext, detokenize, rowKey, settingsOf, uniform,
} from "../../tfcharrnn/export/web/tfcharrnn.js";
import {facts, generate, score, sentences} from "../../tfcharrnn/export/web/static/requests.js";

// ---- a random model of each cell ----

function random(seed) {            // a small deterministic generator for weights
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 1.6;
  };
}

function weightsOf(cell, {V, E, H, layers}, seed = 1) {
  const G = {rnn: 1, gru: 3, lstm: 4}[cell] * H;
  const next = random(seed);
  const w = {};
  const add = (name, shape) => {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => next());
    w[name] = {shape, values};
  };
  if (E) add("embedding", [V, E]);
  for (let l = 0; l < layers; l++) {
    add(`layer_${l}/W_input`, [l === 0 ? (E || V) : H, G]);
    add(`layer_${l}/W_hidden`, [H, G]);
    add(`layer_${l}/b_hidden`, [G]);
    if (cell === "gru") add(`layer_${l}/b_input`, [G]);
  }
  add("softmax/W_softmax", [H, V]);
  add("softmax/b_softmax", [V]);
  return w;
}

function charSpec(cell, sizes, tokens) {
  return {format: "tfcharrnn-web", format_version: 1,
          topology: {cell, layers: sizes.layers, units: sizes.H, embedding_size: sizes.E,
                     vocab_size: tokens.length},
          vocabulary: {level: "char", tokens, lowercase: false, start_ids: [0]},
          page: {defaults: {prime: "", length: 20, temperature: 1, sampling: "sample", top_k: 10,
                            top_p: 0.9, seed: 0, stop: "", num_samples: 1, min_length: 1,
                            max_length: 50},
                 limits: {max_length: 2000, max_batch: 32}},
          facts: {steps: 3, best_val_loss: null, parameters: 0}, weightsManifest: []};
}

const TOKENS = ["\n", " ", "a", "b", "c", "d", "e", "."];

// The equations, written out with no shortcut (cells.py): x [I] -> z = x W + b, per element.
function dense(x, W, b, J) {
  const out = Array.from(b);
  x.forEach((xi, i) => { for (let j = 0; j < J; j++) out[j] += xi * W[i * J + j]; });
  return out;
}
const sig = (x) => 1 / (1 + Math.exp(-x));

function referenceStep(cell, w, sizes, token, state) {
  const {V, E, H, layers} = sizes;
  let x = E ? Array.from(w.embedding.values.slice(token * E, (token + 1) * E))
    : Array.from({length: V}, (_, v) => (v === token ? 1 : 0));
  const next = [];
  for (let l = 0; l < layers; l++) {
    const W = (n) => w[`layer_${l}/${n}`].values;
    if (cell === "gru") {
      const h = state[l];
      const G = 3 * H;
      const xw = dense(x, W("W_input"), W("b_input"), G);
      const hw = dense(h, W("W_hidden"), W("b_hidden"), G);
      const out = h.map((hj, j) => {
        const z = sig(xw[j] + hw[j]);
        const r = sig(xw[H + j] + hw[H + j]);
        const n = Math.tanh(xw[2 * H + j] + r * hw[2 * H + j]);
        return z * hj + (1 - z) * n;
      });
      next.push(out);
      x = out;
    } else if (cell === "lstm") {
      const [h, c] = [state[2 * l], state[2 * l + 1]];
      const G = 4 * H;
      const zx = dense(x, W("W_input"), W("b_hidden"), G);
      const zh = dense(h, W("W_hidden"), new Float32Array(G), G);
      const z = zx.map((v, j) => v + zh[j]);
      const c2 = c.map((cj, j) => sig(z[H + j]) * cj + sig(z[j]) * Math.tanh(z[2 * H + j]));
      const h2 = c2.map((cj, j) => sig(z[3 * H + j]) * Math.tanh(cj));
      next.push(h2, c2);
      x = h2;
    } else {
      const h = state[l];
      const zx = dense(x, W("W_input"), W("b_hidden"), H);
      const zh = dense(h, W("W_hidden"), new Float32Array(H), H);
      const h2 = zx.map((v, j) => Math.tanh(v + zh[j]));
      next.push(h2);
      x = h2;
    }
  }
  const logits = dense(x, w["softmax/W_softmax"].values, w["softmax/b_softmax"].values, V);
  const top = Math.max(...logits);
  const norm = top + Math.log(logits.reduce((s, l) => s + Math.exp(l - top), 0));
  return {logProbs: logits.map((l) => l - norm), state: next};
}

for (const cell of ["rnn", "gru", "lstm"]) {
  for (const E of [0, 3]) {
    test(`${cell} (${E ? "embedding" : "one-hot"}): step equals the written-out equations`, () => {
      const sizes = {V: TOKENS.length, E, H: 5, layers: 2};
      const w = weightsOf(cell, sizes, 7 + E);
      for (const table of [true, false]) {
        const model = new Model(charSpec(cell, sizes, TOKENS), w, {firstLayerTable: table});
        let state = model.initialState();
        let reference = state.map((s) => Array.from(s));
        for (const token of [2, 5, 0, 7, 7, 1]) {
          const mine = model.step(token, state);
          const theirs = referenceStep(cell, w, sizes, token, reference);
          mine.logProbs.forEach((v, i) => assert.ok(Math.abs(v - theirs.logProbs[i]) < 1e-12));
          state = mine.state;
          reference = theirs.state;
        }
      }
    });
  }
}

test("step does not change the state it is given", () => {
  const sizes = {V: TOKENS.length, E: 3, H: 4, layers: 1};
  const model = new Model(charSpec("lstm", sizes, TOKENS), weightsOf("lstm", sizes));
  const state = model.initialState();
  model.step(3, state);
  assert.ok(state.every((s) => s.every((v) => v === 0)));
  assert.throws(() => model.step(TOKENS.length, state), /outside the vocabulary/);
});

test("score reads the first character and scores the rest, as `score` does", () => {
  const sizes = {V: TOKENS.length, E: 3, H: 4, layers: 2};
  const model = new Model(charSpec("gru", sizes, TOKENS), weightsOf("gru", sizes));
  const s = model.score("abc.");
  assert.equal(s.tokens, 3);
  assert.equal(s.perToken[0].lossNats, null);
  let state = model.initialState();
  let total = 0;
  for (const [i, c] of [..."abc"].entries()) {
    const {logProbs, state: next} = model.step(TOKENS.indexOf(c), state);
    total += logProbs[TOKENS.indexOf("abc."[i + 1])];
    state = next;
  }
  assert.ok(Math.abs(s.logProbNats - total) < 1e-12);
  assert.throws(() => model.score("abz"), /lacks: "z"/);
});

// ---- drawing ----

test("the noise is the same for the same key and counter, and uniform in (0, 1)", () => {
  const a = uniform(rowKey(5, 0), 3, new Float64Array(1000));
  assert.deepEqual(a, uniform(rowKey(5n, 0), 3, new Float64Array(1000)));
  assert.notDeepEqual(a, uniform(rowKey(5, 1), 3, new Float64Array(1000)));
  assert.notDeepEqual(a, uniform(rowKey(5, 0), 4, new Float64Array(1000)));
  assert.ok(a.every((u) => u > 0 && u < 1));
  const mean = a.reduce((s, u) => s + u, 0) / a.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, String(mean));
  assert.equal(attemptSeed(2n ** 63n - 1n, 1), -(2n ** 63n) + 7918n);    // wraps as int64
});

test("draws follow the softmax of logits / temperature; filters and bans hold", () => {
  const logits = Float64Array.from([2, 1, 0.5, 0, -1]);
  const counts = new Array(5).fill(0);
  const key = rowKey(1, 0);
  const N = 20000;
  const u = new Float64Array(5);
  for (let t = 0; t < N; t++) counts[chooseNext(logits, settingsOf({}), uniform(key, t, u))]++;
  const z = logits.reduce((s, l) => s + Math.exp(l), 0);
  counts.forEach((c, v) => {
    const p = Math.exp(logits[v]) / z;
    assert.ok(Math.abs(c / N - p) < 4 * Math.sqrt(p * (1 - p) / N) + 1e-3, `${v}: ${c / N} vs ${p}`);
  });
  const banned = Uint8Array.from([1, 0, 0, 0, 0]);
  for (let t = 0; t < 200; t++) {
    uniform(key, t, u);
    assert.notEqual(chooseNext(logits, settingsOf({}), u, banned), 0);
    assert.ok(chooseNext(logits, settingsOf({sampling: "top_k", topK: 2}), u) <= 1);
    // nucleus of 0.5: token 0 alone has p = 0.53
    assert.equal(chooseNext(logits, settingsOf({sampling: "top_p", topP: 0.5}), u), 0);
    assert.equal(chooseNext(logits, settingsOf({sampling: "argmax"}), u, banned), 1);
  }
  assert.throws(() => settingsOf({sampling: "beam"}), /unknown sampling "beam"/);
  assert.throws(() => settingsOf({temperature: 0}), /temperature must be positive/);
  assert.throws(() => settingsOf({sampling: "top_p", topP: 1.5}), /topP must be in/);
});

test("generate: the prime, then length tokens, the same for the same seed, cut at stop", async () => {
  const sizes = {V: TOKENS.length, E: 3, H: 6, layers: 2};
  const model = new Model(charSpec("lstm", sizes, TOKENS), weightsOf("lstm", sizes, 3));
  const pieces = [];
  const text = await model.generate({prime: "ab", length: 200, seed: 4,
                                     onToken: (p) => pieces.push(p), yieldEvery: 7});
  assert.ok(text.startsWith("ab") && text.length === 202);
  assert.equal("ab" + pieces.join(""), text);
  assert.equal(await model.generate({prime: "ab", length: 200, seed: 4}), text);
  assert.notEqual(await model.generate({prime: "ab", length: 200, seed: 5}), text);
  const at = text.indexOf("a", 2);
  assert.ok(at > 2);
  const cut = await model.generate({prime: "ab", length: 200, seed: 4, stop: "a"});
  assert.equal(cut, text.slice(0, at));
  await assert.rejects(model.generate({prime: "az"}), /the prime has 1 character\(s\).*"z"/);
  const aborted = {aborted: true};
  await assert.rejects(model.generate({length: 100, signal: aborted, yieldEvery: 10}),
                       {name: "AbortError"});
});

// ---- text helpers ----

test("StopAt holds back what may begin the marker", () => {
  const stop = new StopAt("END");
  assert.equal(stop.feed("abcE"), "ab");
  assert.equal(stop.feed("N"), "c");
  assert.equal(stop.feed("D more"), "");
  assert.ok(stop.done);
  const open = new StopAt("xy");
  assert.equal(open.feed("abx") + open.flush(), "abx");
});

test("detokenize joins NLTK tokens as text", () => {
  assert.equal(detokenize(["my", "lord", ",", "i", "will", "n't", "go", "."]),
               "my lord, i willn't go.");
  assert.equal(detokenize(["(", "yes", ")", "it", "'s", "true", "!"]), "(yes) it's true!");
  assert.deepEqual(sentences("One. Two!  Three? four"), ["One.", "Two!", "Three?", "four"]);
});

// ---- the page's requests ----

test("requests: generate streams each sample's text, score ranks and explains", async () => {
  const sizes = {V: TOKENS.length, E: 3, H: 6, layers: 1};
  const spec = charSpec("rnn", sizes, TOKENS);
  const model = new Model(spec, weightsOf("rnn", sizes, 9));
  const streamed = ["", ""];
  const {texts} = await generate(model, {prime: "a", length: 150, num_samples: 2, seed: 3},
                                 (c) => { streamed[c.sample] += c.delta; });
  assert.deepEqual(streamed.map((s) => "a" + s), texts);
  assert.equal(texts[0], await model.generate({prime: "a", length: 150, seed: 3, row: 0}));
  assert.equal(texts[1], await model.generate({prime: "a", length: 150, seed: 3, row: 1}));
  await assert.rejects(generate(model, {num_samples: 33}), /above this page's limit of 32/);
  const {results} = score(model, ["abc", "a", "dd. e"], {perToken: true, sort: true});
  assert.deepEqual(results.map((r) => r.tokens).sort(), [0, 2, 4]);
  for (let i = 1; i < results.length; i++) {
    assert.ok(results[i - 1].log_prob_nats >= results[i].log_prob_nats);
  }
  const one = results.find((r) => r.text === "a");
  assert.equal(one.loss_nats_per_token, null);
  assert.deepEqual(one.per_token, [{token: "a", loss_nats: null}]);
  assert.equal(score(model, ["ab. cd"], {unit: "sentence"}).results.length, 2);
  const f = facts(spec);
  assert.equal(f.cell, "rnn");
  assert.equal(f.runs_in, "browser");
  assert.equal(f.defaults.length, 20);
});
