"""Cut a token sequence into parallel streams for truncated backpropagation through time.

The invariant everything downstream relies on:

    The ids are cut into `batch_size` contiguous streams of equal length S. Batch i is the
    window [i * seq_len, (i + 1) * seq_len) of every stream, and its targets are the same
    window shifted one token ahead. So row b of batch i + 1 continues row b of batch i
    exactly where it stopped.

That is what makes it correct to feed the final recurrent state of batch i as the initial
state of batch i + 1: row b of the state has just read the text that row b of the next
batch continues. Shuffling batches or rows would silently break it.

Stream b holds inputs ids[b*S : (b+1)*S] and targets ids[b*S+1 : (b+1)*S+1], with
S = (len(ids) - 1) // batch_size; the last (len(ids) - 1) % batch_size tokens and the last
partial window of each stream are not used. All arrays are views of `ids`, so batching costs
no memory beyond the encoded corpus; `ids` may be stored compactly (uint8 for a character
vocabulary) and each batch is cast to int32 as it is taken.
"""

import mmap

import numpy as np

# Batches between two hand-backs of a memory-mapped corpus's read pages (`_release`).
RELEASE_EVERY = 64


class StreamBatches:
    """Indexable sequence of (inputs, targets) int32 batches, each [batch_size, seq_len]."""

    def __init__(self, ids: np.ndarray, batch_size: int, seq_len: int):
        self.batch_size = batch_size
        self.seq_len = seq_len
        stream_len = (len(ids) - 1) // batch_size if len(ids) > 0 else 0  # S
        self.num_batches = stream_len // seq_len
        used = batch_size * stream_len
        self.ids = ids
        self._inputs = ids[:used].reshape(batch_size, stream_len)        # [B, S]
        self._targets = ids[1:used + 1].reshape(batch_size, stream_len)  # [B, S]
        self._released = 0                                               # see _release

    @staticmethod
    def min_tokens(batch_size: int, seq_len: int) -> int:
        """Fewest tokens that give one batch."""
        return batch_size * seq_len + 1

    def __len__(self):
        return self.num_batches

    def __getitem__(self, i):
        if not 0 <= i < self.num_batches:
            raise IndexError(f"batch {i} out of range [0, {self.num_batches})")
        window = slice(i * self.seq_len, (i + 1) * self.seq_len)
        return (self._inputs[:, window].astype(np.int32),
                self._targets[:, window].astype(np.int32))

    def rows(self, i, lo: int, hi: int):
        """Batch i with only streams lo..hi-1 read (the rest zeros, never read from the ids):
        what one worker of several needs, whose replicas own those streams."""
        self._release(i)
        if (lo, hi) == (0, self.batch_size):
            return self[i]
        if not 0 <= i < self.num_batches:
            raise IndexError(f"batch {i} out of range [0, {self.num_batches})")
        window = slice(i * self.seq_len, (i + 1) * self.seq_len)
        x = np.zeros([self.batch_size, self.seq_len], np.int32)
        y = np.zeros([self.batch_size, self.seq_len], np.int32)
        x[lo:hi] = self._inputs[lo:hi, window]
        y[lo:hi] = self._targets[lo:hi, window]
        return x, y

    def _release(self, i: int):
        """Memory-mapped ids (a prepared file): every RELEASE_EVERY batches, hands the pages
        each stream has read back to the kernel (they stay in the page cache, not in this
        process), so resident memory stays flat however long the corpus."""
        mapping = getattr(self.ids, "_mmap", None)
        if i < self._released:                       # a new epoch: from the start again
            self._released = 0
        if mapping is None or i - self._released < RELEASE_EVERY:
            return
        if mapping.size() != self.ids.offset + self.ids.nbytes:
            return                        # a slice of the file: its offsets are not known here
        self._released = i
        page = mmap.PAGESIZE
        offset = self.ids.offset                     # the file's header, before the ids
        stream_bytes = self._inputs.shape[1] * self.ids.itemsize
        for row in range(self.batch_size):
            start = offset + row * stream_bytes
            end = start + (i - 1) * self.seq_len * self.ids.itemsize   # up to the last window
            first, last = -(-start // page) * page, end // page * page
            if last > first:
                mapping.madvise(mmap.MADV_DONTNEED, first, last - first)

    def __iter__(self):
        for i in range(self.num_batches):
            yield self[i]

    @property
    def tokens_per_batch(self) -> int:
        return self.batch_size * self.seq_len
