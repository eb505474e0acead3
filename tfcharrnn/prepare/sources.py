"""A corpus as a stream: its files (a file, a folder or a glob), read piece by piece,
decompressed and decoded on the way, as documents.

A plain text file is one document; a CSV file gives one document per row (the chosen column,
as `corpus.read_documents` reads it). Nothing here holds more than a piece (`PIECE_BYTES` of
the file) and, for a CSV, one row, so memory does not grow with the corpus. `.gz`, `.bz2` and
`.xz` files are read through their decompressor.
"""

import bz2
import codecs
import glob
import gzip
import lzma
import os
import re

from tfcharrnn import corpus
from tfcharrnn.errors import UsageError

PIECE_BYTES = 1 << 22                     # 4 MiB of the (decompressed) file at a time
SNIFF_CHARS = 65536                       # what corpus.read_csv_column sniffs, too
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
TEXT_SUFFIXES = ("", ".txt", ".text", ".md", ".rst", ".csv", ".tsv")


def _base_suffix(path: str) -> str:
    """'.txt' for 'a.txt.gz' and 'a.txt'; '' for 'README'."""
    name = os.path.basename(path)
    stem, suffix = os.path.splitext(name)
    if suffix.lower() in OPENERS:
        suffix = os.path.splitext(stem)[1]
    return suffix.lower()


def list_files(data_path: str) -> tuple:
    """(files in order, files skipped) of a file, a folder (every text or CSV file under it,
    compressed or not, in sorted path order; hidden ones left out) or a glob."""
    if os.path.isdir(data_path):
        found = []
        for root, dirs, files in os.walk(data_path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found.extend(os.path.join(root, f) for f in files if not f.startswith("."))
        found.sort(key=lambda p: os.path.relpath(p, data_path))
        files = [p for p in found if _base_suffix(p) in TEXT_SUFFIXES]
        if not files:
            raise UsageError(f"--data_path {data_path} holds no text files (.txt, .md, .csv, "
                             f".tsv or no suffix, optionally .gz, .bz2 or .xz); pass a folder "
                             f"with text in it")
        return files, [p for p in found if p not in set(files)]
    if any(c in data_path for c in "*?["):
        files = sorted(p for p in glob.glob(data_path, recursive=True) if os.path.isfile(p))
        if not files:
            raise UsageError(f"--data_path {data_path} matches no file; check the pattern")
        return files, []
    if not os.path.exists(data_path):
        raise UsageError(f"data file not found: {data_path}; pass --data_path=<a text file, a "
                         f"folder or a glob>")
    return [data_path], []


def fingerprint(files: list, root: str) -> list:
    """What identifies the sources: each file's path (relative to the folder `root`, or its
    name), size, modification time and SHA-256 of its bytes."""
    return [{"path": _relative(p, root), "bytes": os.path.getsize(p),
             "mtime": os.path.getmtime(p), "sha256": sha256(p)} for p in files]


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)


def sha256(path: str) -> str:
    import hashlib
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def changed(recorded: list, files: list, root: str):
    """The first source that is not what `recorded` (a fingerprint) says, as a phrase naming
    it, or None. A file whose time changed but not its bytes is unchanged."""
    now = {_relative(p, root): p for p in files}
    then = {r["path"]: r for r in recorded}
    for name in sorted(set(now) | set(then)):
        if name not in now:
            return f"{name} is gone"
        if name not in then:
            return f"{now[name]} is new"
        path, r = now[name], then[name]
        if os.path.getsize(path) != r["bytes"]:
            return f"{path} changed size ({r['bytes']:,} -> {os.path.getsize(path):,} bytes)"
        if os.path.getmtime(path) != r["mtime"] and sha256(path) != r["sha256"]:
            return f"{path} changed (its contents differ)"
    return None


def _open(path: str):
    opener = OPENERS.get(os.path.splitext(path)[1].lower(), open)
    return opener(path, "rb")


def pieces(path: str, encoding: str = "utf-8", errors: str = "strict"):
    """The text of one file, decoded piece by piece (str pieces)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors)
    except LookupError:
        raise UsageError(f"unknown --encoding={encoding!r}; use a Python codec name such as "
                         f"utf-8 or latin-1") from None
    wide = encoding.lower().replace("-", "") in ("utf16", "utf32")
    offset, empty = 0, True
    try:
        with _open(path) as f:
            while True:
                raw = f.read(PIECE_BYTES)
                if offset == 0 and b"\x00" in raw[:65536] and not wide:
                    raise UsageError(f"data file looks binary (it contains NUL bytes): {path};"
                                     f" pass a text file")
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as e:
                    raise UsageError(
                        f"data file is not valid {encoding}: byte {offset + e.start} "
                        f"(0x{raw[e.start]:02x}) of {path}; pass --encoding=<its encoding> "
                        f"(e.g. latin-1), or --encoding_errors=replace to substitute "
                        f"undecodable bytes") from None
                if text:
                    empty = False
                    yield text
                if not raw:
                    break
                offset += len(raw)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise UsageError(f"cannot read {path} ({type(e).__name__}: {e}); if it is compressed, "
                         f"it is damaged or not what its suffix says") from None
    if empty:
        raise UsageError(f"data file is empty: {path}; pass a file that contains text")


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r(?!$))|[^\r\n]+$|\r$")


def _lines(text_pieces):
    """Lines with their endings (\\n, \\r\\n or \\r), as io.StringIO(newline="") gives them."""
    carry = ""
    for piece in text_pieces:
        buffer = carry + piece
        cut = max(buffer.rfind("\n"), buffer.rfind("\r"))
        if cut == len(buffer) - 1 and buffer.endswith("\r"):
            cut -= 1                                   # a \r that may be half of \r\n
        if cut < 0:
            carry = buffer
            continue
        yield from _LINE.findall(buffer[:cut + 1])
        carry = buffer[cut + 1:]
    if carry:
        yield from _LINE.findall(carry)


def csv_documents(path: str, text_pieces, column: str = ""):
    """The rows' documents of a CSV file, as `corpus.read_csv_column` reads them, streaming."""
    import csv
    import itertools
    head, sample = [], ""
    for piece in text_pieces:
        head.append(piece)
        sample += piece
        if len(sample) >= SNIFF_CHARS:
            break
    sample = sample[:SNIFF_CHARS]
    everything = itertools.chain(head, text_pieces)
    # corpus.read_csv_column decides the dialect, header and column from the sample and the
    # first row; give it the sample's rows only, then read the rest with the same decisions.
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if path.lower().endswith(".tsv") else csv.excel
    rows = (r for r in csv.reader(_lines(everything), dialect) if r)
    try:
        first = next(rows)
    except StopIteration:
        raise UsageError(f"{path} has no CSV rows; pass a file with at least one row") from None
    except csv.Error as e:
        raise UsageError(f"{path} is not a readable CSV file ({e}); check its quoting, "
                         f"or pass --data_format=text to read it as plain text") from None
    index, skip_first = corpus.csv_column_index(first, sample, path, column)
    body = rows if skip_first else itertools.chain([first], rows)
    try:
        for r in body:
            if index < len(r) and r[index].strip():
                yield r[index]
    except csv.Error as e:
        raise UsageError(f"{path} is not a readable CSV file ({e}); check its quoting, "
                         f"or pass --data_format=text to read it as plain text") from None


def documents(files: list, encoding="utf-8", data_format="auto", csv_column="",
              errors="strict"):
    """Every document of the files, in order: each an iterator of str pieces (a text file's
    pieces, or a CSV row's one field)."""
    for path in files:
        text = pieces(path, encoding, errors)
        if corpus.is_csv(path[:-len(os.path.splitext(path)[1])]
                         if os.path.splitext(path)[1].lower() in OPENERS else path, data_format):
            for field in csv_documents(path, text, csv_column):
                yield iter((field,))
        else:
            yield text
