"""Prepare a corpus: python -m tfcharrnn.prepare --data_path=SRC --out=DATA_DIR"""

import flags as tfcharrnn_flags  # the top-level flags/ package

from tfcharrnn import cli

tfcharrnn_flags.define_prepare_flags()


def main(argv):
    from tfcharrnn.prepare import prepare_lib
    config = tfcharrnn_flags.prepare_config()
    meta = prepare_lib.prepare(config.data, config.out, config.num_workers, config.overwrite,
                               log=print)
    counts = meta["counts"]
    splits = ", ".join(f"{name} {counts[name]:,}" for name in ("train", "val", "test")
                       if name in counts)
    print(f"prepared {len(meta['sources'])} file(s) into {config.out} in {meta['seconds']} s: "
          f"{counts['tokens']:,} tokens ({splits}), vocabulary of {meta['vocab_size']:,}, "
          f"ids as {meta['dtype']}; train on it with python -m tfcharrnn.train "
          f"--data_path={config.out}")


if __name__ == "__main__":
    cli.run(main, tensorflow=False)
