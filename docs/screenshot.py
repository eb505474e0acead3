"""Makes docs/serve_page.png, the README's picture of `python -m tfcharrnn.serve`:

    python docs/screenshot.py --checkpoint_dir=checkpoints/lstm [--out=docs/serve_page.png]

Starts the server on the run and drives its page in the test suite's headless Chromium
(tests/browser.py): generates from a prime, colours the generated text by surprise, ranks a
few lines in the Score panel, then saves the whole page as a PNG.
"""

import argparse
import base64
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

LINES = ["To be, or not to be, that is the question.",    # the same letters three ways
         "To be, or not to be, that is the questoin.",
         "Be not to or be, question the is that to."]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint_dir", default="checkpoints/lstm")
    parser.add_argument("--out", default=os.path.join(HERE, "serve_page.png"))
    parser.add_argument("--prime", default="ROMEO:\n")
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()
    from browser import ServerProcess, chrome, wait_for
    from selenium.webdriver.common.by import By
    server = ServerProcess(ROOT, f"--checkpoint_dir={os.path.abspath(args.checkpoint_dir)}")
    driver = chrome(width=1100, height=900)
    try:
        driver.get(server.url)
        wait_for(lambda: driver.execute_script("return document.body.dataset.ready"))

        def set_value(element_id, value):
            driver.execute_script("const e = document.getElementById(arguments[0]); "
                                  "e.value = arguments[1]; e.dispatchEvent(new Event('input'));",
                                  element_id, str(value))

        driver.find_element(By.ID, "prime").send_keys(args.prime)
        driver.find_element(By.ID, "new_seed").click()
        set_value("seed", args.seed)
        set_value("length", args.length)
        set_value("temperature", args.temperature)
        driver.find_element(By.ID, "generate").click()
        wait_for(lambda: "in " in driver.find_element(By.ID, "status").text
                 and "generating" not in driver.find_element(By.ID, "status").text)
        driver.find_element(By.ID, "use-generated").click()
        driver.find_element(By.ID, "surprise").click()
        wait_for(lambda: "mean loss" in driver.find_element(By.ID, "surprise-status").text)
        driver.find_element(By.ID, "score-input").send_keys("\n".join(LINES))
        driver.find_element(By.ID, "score").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#score-results tbody tr"))
        shot = driver.execute_cdp_cmd("Page.captureScreenshot",
                                      {"format": "png", "captureBeyondViewport": True})
        with open(args.out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.stop()


if __name__ == "__main__":
    main()
