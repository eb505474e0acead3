"""Command-line flags of tfcharrnn, and their conversion into frozen config dataclasses.

Flags are defined here, in small `define_*` functions, and nowhere else. Entry points call the
`define_*` functions they need, let absl parse argv, and hand the library the config returned
by `run_config` / `sample_config` / `eval_config` / `score_config` / `export_config` /
`serve_config` / `prepare_config`. The library never reads FLAGS.
Defaults come from the dataclasses in `tfcharrnn.config`, so the two cannot drift apart.
"""

from flags.definitions import (define_data_flags, define_eval_flags, define_export_flags,
                               define_model_flags, define_plot_flags, define_prepare_flags,
                               define_sample_flags,
                               define_score_flags, define_serve_flags, define_train_flags,
                               eval_config, export_config, plot_config, prepare_config, run_config,
                               sample_config, score_config, serve_config)
from flags.presets import with_preset

__all__ = ["define_data_flags", "define_model_flags", "define_train_flags",
           "define_sample_flags", "define_eval_flags", "define_score_flags", "run_config",
           "define_plot_flags", "sample_config", "eval_config", "score_config", "plot_config",
           "define_export_flags", "export_config", "define_serve_flags", "serve_config",
           "define_prepare_flags", "prepare_config", "with_preset"]
