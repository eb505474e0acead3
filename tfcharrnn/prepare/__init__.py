"""Prepare a corpus of any size for training: python -m tfcharrnn.prepare.

`sources.py` reads the corpus as a stream (a file, a folder or a glob; compressed or not;
text or CSV), `tokenfile.py` is the on-disk format of the ids (a header, then the ids,
memory-mapped when read), `prepare_lib.py` makes a prepared directory (vocab.json, train.bin,
val.bin, test.bin, meta.json) in streaming passes, and `__main__.py` is the command.
"""
