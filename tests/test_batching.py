import numpy as np
import pytest

from tfcharrnn import corpus
from tfcharrnn.batching import StreamBatches


@pytest.mark.parametrize("n,batch_size,seq_len", [(1000, 4, 7), (29, 4, 7), (57, 1, 8)])
def test_rows_continue_across_batches_and_targets_shift_by_one(n, batch_size, seq_len):
    ids = np.arange(n, dtype=np.int32)  # the value of each id is its position in the corpus
    batches = StreamBatches(ids, batch_size, seq_len)
    assert len(batches) >= 1
    for i, (x, y) in enumerate(batches):
        assert x.shape == y.shape == (batch_size, seq_len)
        np.testing.assert_array_equal(y, x + 1)           # targets: the next token
        if i + 1 < len(batches):
            next_x, _ = batches[i + 1]
            # Row b of batch i+1 starts right after where row b of batch i stopped.
            np.testing.assert_array_equal(next_x[:, 0], x[:, -1] + 1)
    # Streams are contiguous, equal-length slices laid end to end.
    first = np.stack([batches[0][0][b, 0] for b in range(batch_size)])
    np.testing.assert_array_equal(np.diff(first), np.full(batch_size - 1, (n - 1) // batch_size))


def test_minimum_length_gives_exactly_one_batch():
    b, t = 3, 5
    n = StreamBatches.min_tokens(b, t)
    assert len(StreamBatches(np.arange(n), b, t)) == 1
    assert len(StreamBatches(np.arange(n - 1), b, t)) == 0


def test_streams_are_views_and_only_the_batch_is_copied():
    ids = np.arange(101, dtype=np.uint8)
    batches = StreamBatches(ids, 2, 10)
    # The [B, S] streams are views of the corpus: no second copy of it is ever made.
    assert np.shares_memory(batches._inputs, ids) and np.shares_memory(batches._targets, ids)
    x, y = batches[0]
    assert x.dtype == y.dtype == np.int32 and x.shape == y.shape == (2, 10)


def test_split_is_contiguous_tail():
    ids = np.arange(100)
    train, val, test = corpus.split(ids, 0.1, 0.05)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), ids)
    assert (len(train), len(val), len(test)) == (85, 10, 5)
    assert val[0] == 85 and test[0] == 95


def test_a_worker_reads_only_its_streams():
    """rows(i, lo, hi): batch i's streams lo..hi-1 as they are, the others zeros."""
    ids = (np.arange(4 * 1000 * 8 + 1) % 251).astype(np.uint8)
    batches = StreamBatches(ids, batch_size=8, seq_len=10)
    x, y = batches.rows(3, 2, 4)
    full_x, full_y = batches[3]
    np.testing.assert_array_equal(x[2:4], full_x[2:4])
    np.testing.assert_array_equal(y[2:4], full_y[2:4])
    assert not x[:2].any() and not x[4:].any() and not y[:2].any() and not y[4:].any()
    assert batches.rows(3, 0, 8)[0].tolist() == full_x.tolist()


def test_batches_of_a_mapped_file_are_its_ids_and_hand_back_pages(tmp_path):
    """A prepared (memory-mapped) split: every batch is the in-memory batch, across epochs,
    while read pages are handed back (`_release`) every RELEASE_EVERY batches."""
    from tfcharrnn import batching
    from tfcharrnn.prepare import tokenfile
    ids = (np.arange(8 * 40_000 + 1) * 7 % 253).astype(np.uint8)
    writer = tokenfile.Writer(str(tmp_path / "ids.bin"), np.uint8)
    writer.append(ids)
    writer.close()
    mapped = StreamBatches(tokenfile.read(str(tmp_path / "ids.bin")), batch_size=8, seq_len=50)
    memory = StreamBatches(ids, batch_size=8, seq_len=50)
    released = []
    for epoch in range(2):
        for i in range(len(memory)):
            for a, b in zip(mapped.rows(i, 0, 8), memory[i]):   # also after pages went back
                np.testing.assert_array_equal(a, b)
            if mapped._released == i and i:
                released.append(i)
    assert released.count(batching.RELEASE_EVERY) == 2      # once in each epoch
    assert len(released) == 2 * ((len(memory) - 1) // batching.RELEASE_EVERY)
