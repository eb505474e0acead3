"""Named sets of flag values that ship with the package: --preset=NAME.

A preset is an absl flagfile, flags/presets/NAME.cfg, whose first line is a comment
"# NAME: what it is for". `with_preset(argv)` replaces --preset=NAME by --flagfile=<that file>
placed before every other flag, so that flags given on the command line override the preset
(absl keeps the last value of a flag). The resolved values, not the preset's name alone, are
what config.json records.

A preset may hold variants by precision: flags/presets/NAME/PRECISION.cfg (for example
cpu_hour/float32.cfg), read after NAME.cfg and before the command line, for the precision that
`--precision` (the command line's, else the preset's) resolves to on this machine
(`--precision=auto`: the entry point's `resolve_precision`). The same command then trains the
recipe that suits the steps the machine affords, and config.json records the values used.
"""

import os

from absl import flags

PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "presets")


def available() -> dict:
    """{name: one-line description} of the presets that ship with the package."""
    presets = {}
    for file_name in sorted(os.listdir(PRESET_DIR)):
        if file_name.endswith(".cfg"):
            name = file_name[:-len(".cfg")]
            with open(os.path.join(PRESET_DIR, file_name), encoding="utf-8") as f:
                first = f.readline().lstrip("#").strip()
            presets[name] = first.split(":", 1)[1].strip() if ":" in first else first
    return presets


def path(name: str) -> str:
    return os.path.join(PRESET_DIR, f"{name}.cfg")


def variants(name: str) -> dict:
    """{precision: path} of the preset's variants (none for most presets)."""
    folder = os.path.join(PRESET_DIR, name)
    if not os.path.isdir(folder):
        return {}
    return {f[:-len(".cfg")]: os.path.join(folder, f)
            for f in sorted(os.listdir(folder)) if f.endswith(".cfg")}


def _last_value(args, flag: str):
    """The last value of --flag=VALUE (or --flag VALUE) in a list of arguments, or None."""
    value = None
    for i, arg in enumerate(args):
        if arg.startswith(f"--{flag}="):
            value = arg.split("=", 1)[1]
        elif arg == f"--{flag}" and i + 1 < len(args):
            value = args[i + 1]
    return value


def _file_args(file_path: str) -> list:
    with open(file_path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def with_preset(argv: list, resolve_precision=None) -> list:
    """argv with --preset=NAME (or --preset NAME) turned into its flagfile, first, and the
    flagfile of the variant for the resolved precision after it.

    resolve_precision: "auto" (or any --precision value) -> the precision this machine trains
    in; without it, a preset's variant is chosen by the value as written."""
    name, rest, i = None, [], 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--preset="):
            name = arg.split("=", 1)[1]
        elif arg == "--preset" and i + 1 < len(argv):
            name, i = argv[i + 1], i + 1
        else:
            rest.append(arg)
        i += 1
    if not name:
        return list(argv)
    if name not in available():
        raise flags.IllegalFlagValueError(
            f"unknown --preset={name!r}; choose one of: {', '.join(available())}")
    files = [path(name)]
    chosen = variants(name)
    if chosen:
        precision = (_last_value(rest, "precision")
                     or _last_value(_file_args(path(name)), "precision") or "float32")
        precision = resolve_precision(precision) if resolve_precision else precision
        if precision in chosen:
            files.append(chosen[precision])
    return [argv[0], *(f"--flagfile={f}" for f in files), f"--preset={name}", *rest]


def help_text() -> str:
    return "Named flag values (command-line flags override them): " + "; ".join(
        f"{name}: {about.rstrip('.')}" for name, about in available().items()) + "."
