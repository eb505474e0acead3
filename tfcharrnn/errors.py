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
