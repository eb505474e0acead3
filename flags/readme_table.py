"""Prints the README's flag tables: python -m flags.readme_table

The README test compares the README against this output, so a new flag or a changed default
cannot go undocumented.
"""

from absl import flags

from flags import definitions

COMMANDS = [("train", definitions.define_train_flags),
            ("sample", definitions.define_sample_flags),
            ("evaluate", definitions.define_eval_flags),
            ("score", definitions.define_score_flags),
            ("export", definitions.define_export_flags),
            ("serve", definitions.define_serve_flags),
            ("plot", definitions.define_plot_flags),
            ("prepare", definitions.define_prepare_flags)]


def _default(value) -> str:
    if value == "" or value is None:
        return "`\"\"`" if value == "" else "(see meaning)"
    return f"`{value}`"


def table() -> str:
    parts = []
    for command, define in COMMANDS:
        fv = flags.FlagValues()
        define(fv)
        rows = [f"`python -m tfcharrnn.{command}`", "", "| flag | default | meaning |",
                "|---|---|---|"]
        seen = set()
        for module_flags in fv.flags_by_module_dict().values():
            for flag in module_flags:
                if flag.name in seen:
                    continue
                seen.add(flag.name)
                help_text = flag.help.split(": ", 1)[1] if flag.help.startswith("<") else flag.help
                rows.append(f"| `--{flag.name}` | {_default(flag.default)} | {help_text} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    print(table(), end="")
