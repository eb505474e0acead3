"""What every command shares: quiet start-up, flag errors and failures as one line.

Entry points call `run(main)`. Flags are parsed first, so `--verbosity` is known before
TensorFlow is imported: by default TensorFlow's start-up log (oneDNN notice, CPU feature
guard) is swallowed; `--verbosity=0` or more shows it, and `--verbosity=1` also shows the
traceback of a failure.
"""

import os
import sys
import tempfile

from absl import app
from absl import flags

from tfcharrnn.errors import TfcharrnnError

FLAGS = flags.FLAGS


def import_tensorflow(verbosity: int):
    """Imports TensorFlow, hiding its C++ start-up log unless verbosity >= 0.

    The start-up lines are written by C++ code straight to file descriptor 2 before any log
    level applies (TF_CPP_MIN_LOG_LEVEL does not silence them), so the descriptor itself is
    pointed at a temporary file during the import. If the import fails, the captured text is
    replayed so nothing useful is lost.

    oneDNN's kernels are switched on unless the caller set TF_ENABLE_ONEDNN_OPTS: TensorFlow
    enables them by default only on CPUs with AVX-512 VNNI/BF16 or AMX, and on an AVX2-only
    2-core CPU they made a 2048^3 matmul 133 -> 179 GFLOP/s and the default 2 x 256 LSTM's
    training 5-8% faster (GRU 13-17%). TF_ENABLE_ONEDNN_OPTS=0 brings TensorFlow's Eigen
    kernels back, which were faster there for the 2 x 512 basic RNN (about 9%).
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    _check_one_tensorflow()
    if verbosity >= 0:
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    tf.get_logger().setLevel("ERROR")
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)


def _check_one_tensorflow():
    """`tensorflow-cpu` and `tensorflow` ship the same files: with both installed, whichever
    came last overwrote parts of the other, and TensorFlow fails in odd ways."""
    from importlib import metadata
    installed = []
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    if len(installed) > 1:
        raise TfcharrnnError(
            f"two TensorFlow distributions are installed ({', '.join(installed)}), whose files "
            f"overwrite each other; run `pip uninstall -y tensorflow tensorflow-cpu`, then "
            f"install again as the README says (TFCHARRNN_GPU=1 for the GPU build)")


def _parse_flags(argv, expand_argv=None):
    try:
        return FLAGS(expand_argv(argv) if expand_argv else argv)
    except flags.Error as e:
        _fail(f"{e}; run with --helpshort to list the flags", 2)
    except TfcharrnnError as e:  # an expansion that imports TensorFlow (train's --preset)
        _fail(str(e), e.exit_code)


def _fail(message: str, code: int):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def verbosity_in(argv) -> int:
    """verbosity() from a command line absl has not parsed yet (for work done while
    expanding it, such as a preset's choice of precision)."""
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in ("--verbosity", "--v", "-v"):
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) else "0"
            try:
                return int(value)
            except ValueError:
                return 0
    return -1


def verbosity() -> int:
    """The --verbosity the user asked for; -1 (quiet) when not given.

    absl's app.run lowers the flag's value to 0 after parsing, so its value alone does not
    tell whether the user asked for more detail.
    """
    return FLAGS.verbosity if FLAGS["verbosity"].present else -1


def run(main, expand_argv=None, tensorflow: bool = True):
    """Runs `main(argv)` as an absl app with tfcharrnn's error handling. `expand_argv`
    rewrites the command line before absl parses it (train's --preset); tensorflow=False
    for a command that needs none (prepare: ~500 MB less memory, 3 s less start-up)."""
    def wrapped(argv):
        if len(argv) > 1:
            _fail(f"unexpected argument(s): {' '.join(argv[1:])}; flags look like --name=value",
                  2)
        try:
            if tensorflow:
                import_tensorflow(verbosity())
            main(argv)
        except TfcharrnnError as e:
            if verbosity() >= 1:
                raise
            _fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:
            # The reader went away (`sample | head`): stop quietly, as other tools do; the
            # standard output is pointed at /dev/null so the exit's flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
    app.run(wrapped, flags_parser=lambda argv: _parse_flags(argv, expand_argv))


__all__ = ["run", "import_tensorflow", "verbosity_in"]
