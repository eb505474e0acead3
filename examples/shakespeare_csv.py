"""Writes the bundled tiny-shakespeare as a CSV of "comments": one speech per row.

    python examples/shakespeare_csv.py speeches.csv

Columns: speaker, text. Speeches span several lines, so the text fields are quoted and hold
newlines (and commas), like an export of user comments. Used by the README's word-level example.
"""

import csv
import sys

from tfcharrnn.config import BUNDLED_CORPUS


def speeches(text):
    """Yields (speaker, speech) from blocks like 'ROMEO:\\nline\\nline'."""
    for block in text.split("\n\n"):
        head, _, body = block.strip().partition("\n")
        if head.endswith(":") and body.strip():
            yield head[:-1], body.strip()


def main(path):
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        rows = list(speeches(f.read()))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["speaker", "text"])
        writer.writerows(rows)
    print(f"wrote {len(rows):,} speeches to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "speeches.csv")
