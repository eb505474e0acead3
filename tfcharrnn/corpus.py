"""Read a corpus from disk and split it into train / validation / test.

The splits are contiguous, like char-rnn and nanoGPT: the training text is the head of the
file, validation the tail (and test, if asked for, the very end), so no sentence is shared
between splits and the streams of each split read text in its natural order.
"""

import os

from tfcharrnn.errors import UsageError


def read_text(path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Returns the whole file as a string, or raises a one-line `UsageError`."""
    if not os.path.exists(path):
        raise UsageError(f"data file not found: {path}; pass --data_path=<a text file>")
    if os.path.isdir(path):
        raise UsageError(f"--data_path is a directory, not a file: {path}; "
                         f"pass the path of a text file inside it")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise UsageError(f"data file is empty: {path}; pass a file that contains text")
    if b"\x00" in raw[:65536] and encoding.lower().replace("-", "") not in ("utf16", "utf32"):
        raise UsageError(f"data file looks binary (it contains NUL bytes): {path}; "
                         f"pass a text file")
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        raise UsageError(f"data file is not valid {encoding}: byte {e.start} "
                         f"(0x{raw[e.start]:02x}) of {path}; pass --encoding=<its encoding> "
                         f"(e.g. latin-1), or --encoding_errors=replace to substitute "
                         f"undecodable bytes") from None
    except LookupError:
        raise UsageError(f"unknown --encoding={encoding!r}; use a Python codec name "
                         f"such as utf-8 or latin-1") from None
    if not text:        # bytes that decode to nothing (--encoding_errors=ignore)
        raise UsageError(f"data file holds no text in {encoding} ({len(raw)} bytes, none "
                         f"decoded): {path}; pass --encoding=<its encoding>")
    return text


def is_plain_file(path: str) -> bool:
    """A single file read as it is (not a folder, a glob or a compressed file)."""
    return (os.path.isfile(path) and not any(c in path for c in "*?[")
            and os.path.splitext(path)[1].lower() not in (".gz", ".bz2", ".xz"))


def split(ids, val_fraction: float, test_fraction: float = 0.0):
    """Cuts a 1-D id array into contiguous (train, val, test) parts, as views (no copy).

    Returns:
      train, val, test: 1-D arrays; val is the tail before test, test is the very end.
    """
    n = len(ids)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]


def is_csv(path: str, data_format: str) -> bool:
    if data_format == "auto":
        return os.path.splitext(path)[1].lower() in (".csv", ".tsv")
    return data_format == "csv"


def read_documents(path: str, encoding: str = "utf-8", data_format: str = "auto",
                   csv_column: str = "", errors: str = "strict") -> list:
    """The corpus as a list of documents (strings).

    A plain text file is one document. A CSV file (data_format "csv", or "auto" with a .csv or
    .tsv name) gives one document per row: the field named or numbered (0-based) by
    `csv_column`, default the first column. A header row is detected, quoted fields may hold
    commas and newlines, and empty fields are skipped.
    """
    text = read_text(path, encoding, errors)
    if not is_csv(path, data_format):
        return [text]
    return read_csv_column(text, path, csv_column)


def read_csv_column(text: str, path: str, column: str = "") -> list:
    import csv
    import io

    sample = text[:65536]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if path.lower().endswith(".tsv") else csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as e:
        raise UsageError(f"{path} is not a readable CSV file ({e}); check its quoting, "
                         f"or pass --data_format=text to read it as plain text") from None
    rows = [r for r in rows if r]
    if not rows:
        raise UsageError(f"{path} has no CSV rows; pass a file with at least one row")
    index, skip_first = csv_column_index(rows[0], sample, path, column)
    body = rows[1:] if skip_first else rows
    documents = [r[index] for r in body if index < len(r) and r[index].strip()]
    if not documents:
        raise UsageError(f"{path} has no text in column {index} (its rows: "
                         f"{len(body)}{', after a header' if skip_first else ''}); pass "
                         f"--csv_column=NAME or NUMBER of a column with text")
    return documents


def csv_column_index(first: list, sample: str, path: str, column: str = "") -> tuple:
    """(index of the column, whether the first row is a header to skip), from the first row
    and the first 64 KiB of the file."""
    import csv
    import re
    if column and not re.fullmatch(r"-?[0-9]+", column):
        # A column by name: the first row must be a header that has it.
        if column not in first:
            raise UsageError(f"{path} has no column named {column!r}; its header is "
                             f"{', '.join(repr(c) for c in first)}; pass --csv_column=<name> "
                             f"or a 0-based index")
        return first.index(column), True
    index = int(column) if column else 0
    if not 0 <= index < len(first):
        raise UsageError(f"--csv_column={index} is out of range: {path} has "
                         f"{len(first)} column(s), numbered 0 to {len(first) - 1}")
    try:
        has_header = csv.Sniffer().has_header(sample)
    except csv.Error:
        has_header = False
    return index, has_header
