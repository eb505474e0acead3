"""The two kinds of failure a user can meet, and how each ends the process.

`UsageError`: the user asked for something that cannot work (a bad flag, a missing file);
exit status 2. `RunError`: a run failed for a reason outside the arguments (a corrupt
checkpoint, a full disk, a diverging loss); exit status 1. Entry points print either as one
line, without a traceback.
"""


class TfcharrnnError(Exception):
    exit_code = 1


class UsageError(TfcharrnnError):
    exit_code = 2


class RunError(TfcharrnnError):
    exit_code = 1


def cannot_write(flag: str, path: str, reason) -> UsageError:
    """The one line for an output path that cannot be written (--checkpoint_dir, --out,
    --export_dir): the path, why (an OSError's text, or a string), and what to do."""
    import errno
    code = getattr(reason, "errno", None)
    text = ("a file stands where a folder would go" if code in (errno.EEXIST, errno.ENOTDIR)
            else getattr(reason, "strerror", None) or str(reason))
    fix = ("free some space or pass another " if code == errno.ENOSPC
           else "pass a path you can write to as ")
    return UsageError(f"cannot write {flag} {path} ({text}); {fix}{flag}")
