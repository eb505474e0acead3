// node --test tests/js: the surprise view's colour scale and hover text.
import assert from "node:assert/strict";
import test from "node:test";

import {legendGradient, MAX_LOSS, surpriseColour, tokenTitle}
  from "../../tfcharrnn/serve/static/surprise.js";

function rgb(colour) {
  return colour.match(/\d+/g).map(Number);
}

test("no loss, no colour; zero loss is the page's white; MAX_LOSS and beyond the red end", () => {
  assert.equal(surpriseColour(null), null);
  assert.equal(surpriseColour(undefined), null);
  assert.equal(surpriseColour(NaN), null);
  assert.deepEqual(rgb(surpriseColour(0)), [255, 255, 255]);
  assert.deepEqual(rgb(surpriseColour(-1)), [255, 255, 255]);
  assert.deepEqual(rgb(surpriseColour(MAX_LOSS)), [214, 39, 40]);
  assert.deepEqual(rgb(surpriseColour(50)), [214, 39, 40]);
});

test("the colour darkens steadily with the loss", () => {
  let previous = null;
  for (let loss = 0; loss <= MAX_LOSS; loss += 0.05) {
    const [r, g, b] = rgb(surpriseColour(loss));
    const lightness = r + g + b;
    if (previous !== null) assert.ok(lightness <= previous, `loss ${loss}`);
    assert.ok(b <= g + 1 && g <= r, `loss ${loss}: a warm colour`);
    previous = lightness;
  }
  // a quarter of the range already shows
  assert.ok(rgb(surpriseColour(MAX_LOSS / 4))[2] < 200);
});

test("hover text: probability and loss, the read character, unknown words", () => {
  assert.equal(tokenTitle({token: "e", loss_nats: Math.log(4)}),
               "\"e\": p = 0.250, loss 1.39 nats");
  assert.equal(tokenTitle({token: "\n", loss_nats: 9}), "\"\\n\": p = 1.2e-4, loss 9.00 nats");
  assert.equal(tokenTitle({token: "T", loss_nats: null}), "\"T\": read first, not predicted");
  assert.match(tokenTitle({token: "zebra", loss_nats: 3, unknown: true}), /UNKNOWN_TOKEN/);
});

test("the legend runs from white to red", () => {
  const gradient = legendGradient();
  assert.match(gradient, /^linear-gradient\(to right, rgb\(255, 255, 255\) 0%/);
  assert.match(gradient, /rgb\(214, 39, 40\) 100%\)$/);
});
