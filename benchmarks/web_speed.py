"""Generation speed of the web export's JavaScript runtime: headless Chromium and Node.

    python benchmarks/web_speed.py [--length=3000] [--repeats=3]

Trains the default model (`python -m tfcharrnn.train --model=lstm`: 2 x 256 LSTM) and the
`cpu_hour` preset's (2 x 512 LSTM) for one step each into a temporary directory (the weights
do not change the speed), exports both with `--format=web`, serves the folders with a static
server on a loopback port and, for each, times `model.generate({length})` (after a warm-up of
200 tokens) in headless Chromium's main thread, through the page (its Web Worker: the chars/s
the page shows when Generate ends, for up to 2,000 characters, the page's limit) and in Node. It also times the runtime's inner loop alone,
a [K, J] float32 matrix-vector product (the same loop as tfcharrnn.js's addProduct:
the matrix transposed, four outputs at a time), to give
the JS engine's matrix-vector rate, and the fraction of it that generation reaches. Prints a
Markdown table with the CPU named. Not a test: nothing here passes or fails.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

MODELS = {"default (2 x 256 LSTM)": ["--model=lstm"],
          "cpu_hour (2 x 512 LSTM)": ["--preset=cpu_hour"]}

# Times generate() of `length` tokens, best of `repeats`, after a warm-up; and the matrix-vector
# loop. Runs in a page (execute_async_script) and in Node (an ES module on stdin).
TIMING = """
async function timing(url, length, repeats, K, J) {
  const {load} = await import(RUNTIME);
  const model = await load(url);
  await model.generate({length: 200, seed: 1});
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await model.generate({length, seed: r, yieldEvery: 1 << 30});
    best = Math.min(best, performance.now() - t0);
  }
  const W = new Float32Array(K * J).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const x = new Float64Array(K).map((_, i) => Math.sin(i));
  const out = new Float64Array(J);
  let mv = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let n = 0; n < 50; n++) {
      for (let j = 0; j < J; j += 4) {      // W stored transposed, [J, K]
        const r0 = j * K, r1 = r0 + K, r2 = r1 + K, r3 = r2 + K;
        let a = 0, b = 0, c = 0, d = 0, a2 = 0, b2 = 0, c2 = 0, d2 = 0;
        for (let i = 0; i < K; i += 2) {
          const x0 = x[i], x1 = x[i + 1];
          a += x0 * W[r0 + i]; b += x0 * W[r1 + i]; c += x0 * W[r2 + i]; d += x0 * W[r3 + i];
          a2 += x1 * W[r0 + i + 1]; b2 += x1 * W[r1 + i + 1];
          c2 += x1 * W[r2 + i + 1]; d2 += x1 * W[r3 + i + 1];
        }
        out[j] += a + a2; out[j + 1] += b + b2; out[j + 2] += c + c2; out[j + 3] += d + d2;
      }
    }
    mv = Math.min(mv, (performance.now() - t0) / 50);
  }
  const G = model.gates * model.units;
  let macs = model.units * G + (model.layers - 1) * 2 * model.units * G
    + model.units * model.vocabSize;
  return {chars_per_s: length / (best / 1000), macs_per_char: macs,
          matvec_gflops: 2 * K * J / (mv / 1000) / 1e9, check: out[0]};
}
"""


def train_and_export(tmp: str, name: str, flags: list) -> str:
    run_dir = os.path.join(tmp, f"run{len(os.listdir(tmp))}")
    subprocess.run([sys.executable, "-m", "tfcharrnn.train", *flags, "--max_steps=1",
                    "--eval_every=1", f"--checkpoint_dir={run_dir}"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = os.path.join(tmp, "web", os.path.basename(run_dir))
    subprocess.run([sys.executable, "-m", "tfcharrnn.export", f"--checkpoint_dir={run_dir}",
                    f"--export_dir={folder}", "--format=web"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.basename(folder)


def in_chromium(driver, base: str, folder: str, length: int, repeats: int, K: int, J: int):
    driver.get(f"{base}{folder}/index.html")
    script = TIMING.replace("RUNTIME", json.dumps(f"{base}{folder}/tfcharrnn.js"))
    return driver.execute_async_script(
        script + "timing(...arguments).then(arguments[arguments.length - 1], "
                 "(e) => arguments[arguments.length - 1]({error: String(e)}));",
        f"{base}{folder}/model.json", length, repeats, K, J)


def through_page(driver, base: str, folder: str, length: int) -> float:
    """The chars/s the page shows after Generate (its worker drew the text)."""
    from browser import wait_for
    driver.get(f"{base}{folder}/index.html")
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"))
    driver.execute_script("document.getElementById('length').value = arguments[0];"
                          "document.getElementById('generate').click();",
                          str(min(length, 2000)))      # the page's limit (serve's --max_length)
    status = wait_for(lambda: (lambda s: s if " s, " in s and "chars/s" in s else None)(
        driver.execute_script("return document.getElementById('status').textContent")),
        timeout=120)
    return float(status.split(" s, ")[1].split(" chars/s")[0].replace(",", ""))


def in_node(base: str, folder: str, length: int, repeats: int, K: int, J: int) -> dict:
    runtime = os.path.join(ROOT, "tfcharrnn", "export", "web", "tfcharrnn.js")
    script = (TIMING.replace("RUNTIME", json.dumps("file://" + runtime))
              + f"timing({json.dumps(base + folder + '/model.json')}, {length}, {repeats}, "
                f"{K}, {J}).then((r) => console.log(JSON.stringify(r)));")
    out = subprocess.run(["node", "--input-type=module"], input=script, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from browser import StaticServer, chrome
    from cpu_hour import cpu_name
    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: train_and_export(tmp, name, flags) for name, flags in MODELS.items()}
        server = StaticServer(os.path.join(tmp, "web"))
        driver = chrome()
        driver.set_script_timeout(900)
        try:
            print(f"# {cpu_name()}; node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
                  f"{driver.capabilities.get('browserVersion', 'chromium')}; "
                  f"{args.length} characters per generate, best of {args.repeats}")
            print("| model | MACs per char | Chromium chars/s | page (worker) chars/s | "
                  "Node chars/s | JS matrix-vector GFLOP/s (Chromium) | fraction of it |")
            print("|---|---|---|---|---|---|---|")
            for name, folder in folders.items():
                units = 256 if "256" in name else 512
                K, J = 2 * units, 4 * units
                browser = in_chromium(driver, server.url, folder, args.length, args.repeats, K, J)
                page = through_page(driver, server.url, folder, args.length)
                node = in_node(server.url, folder, args.length, args.repeats, K, J)
                flops = 2 * browser["macs_per_char"] * browser["chars_per_s"] / 1e9
                print(f"| {name} | {browser['macs_per_char']:,} | "
                      f"{browser['chars_per_s']:,.0f} | {page:,.0f} | {node['chars_per_s']:,.0f} | "
                      f"{browser['matvec_gflops']:.2f} | {flops / browser['matvec_gflops']:.0%} |",
                      flush=True)
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
