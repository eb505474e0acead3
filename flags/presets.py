"""Named sets of flag values that ship with the package: --preset=NAME.

A preset is an absl flagfile, flags/presets/NAME.cfg, whose first line is a comment
"# NAME: what it is for". `with_preset(argv)` replaces --preset=NAME by --flagfile=<that file>
placed before every other flag, so that flags given on the command line override the preset
(absl keeps the last value of a flag). The resolved values, not the preset's name alone, are
what config.json records.
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


def with_preset(argv: list) -> list:
    """argv with --preset=NAME (or --preset NAME) turned into its flagfile, first."""
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
    return [argv[0], f"--flagfile={path(name)}", f"--preset={name}", *rest]


def help_text() -> str:
    return "Named flag values (command-line flags override them): " + "; ".join(
        f"{name}: {about.rstrip('.')}" for name, about in available().items()) + "."
