// The colour scale of the surprise view: a token's loss (-log p, in nats) -> a background.
// Expected tokens (loss near 0) keep the page's background; the colour deepens through
// yellow and orange to red at MAX_LOSS nats and beyond (probability e^-6, about 1 in 400).

export const MAX_LOSS = 6;

const STOPS = [  // [loss as a fraction of MAX_LOSS, [r, g, b]]
  [0.0, [255, 255, 255]],
  [0.25, [255, 241, 168]],
  [0.5, [255, 196, 92]],
  [0.75, [250, 122, 72]],
  [1.0, [214, 39, 40]],
];

// rgb(...) for a loss in nats; null for a token that was read but not scored.
export function surpriseColour(loss) {
  if (loss === null || loss === undefined || Number.isNaN(loss)) return null;
  const t = Math.min(Math.max(loss / MAX_LOSS, 0), 1);
  let i = 1;
  while (i < STOPS.length - 1 && t > STOPS[i][0]) i++;
  const [t0, c0] = STOPS[i - 1];
  const [t1, c1] = STOPS[i];
  const f = (t - t0) / (t1 - t0);
  const rgb = c0.map((c, k) => Math.round(c + f * (c1[k] - c)));
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

// The hover text of a token: its probability and loss.
export function tokenTitle(entry) {
  const shown = JSON.stringify(entry.token);   // a newline shows as "\n"
  if (entry.loss_nats === null || entry.loss_nats === undefined) {
    return `${shown}: read first, not predicted`;
  }
  const p = Math.exp(-entry.loss_nats);
  const prob = p >= 0.01 ? p.toFixed(3) : p.toExponential(1);
  const unknown = entry.unknown ? " (unknown word: scored as UNKNOWN_TOKEN)" : "";
  return `${shown}: p = ${prob}, loss ${entry.loss_nats.toFixed(2)} nats${unknown}`;
}

// The CSS gradient of the legend, from loss 0 to MAX_LOSS.
export function legendGradient() {
  const parts = STOPS.map(([t, c]) => `rgb(${c[0]}, ${c[1]}, ${c[2]}) ${Math.round(t * 100)}%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
}
