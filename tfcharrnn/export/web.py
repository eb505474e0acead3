"""`export --format=web`: a static folder that runs the model in a browser, needing nothing else.

    model.json                  the topology, vocabulary, facts and a TensorFlow.js-style
                                weightsManifest (`tf.io.loadWeights` reads the shards too)
    group1-shard{i}of{n}.bin    the weights, little-endian float32 (or float16), ~4 MB each
    tfcharrnn.js                the JavaScript runtime written here (`web/tfcharrnn.js`),
                                with a package.json that makes Node read it as a module
    index.html, static/         the page of `python -m tfcharrnn.serve`, the same files, with
                                an entry point that runs the model in a Web Worker

The weights are stored unfolded, by the manual back-end's names (whichever back-end trained
the run): `embedding` [V, E] (absent for one-hot input), per layer `layer_{i}/W_input`
[I, G*H], `layer_{i}/W_hidden` [H, G*H], `layer_{i}/b_hidden` [G*H] (and the GRU's
`layer_{i}/b_input` [3H]), `softmax/W_softmax` [H, V] and `softmax/b_softmax` [V]. Gate order
along G*H: LSTM i, f, g, o; GRU z, r, n (Keras 3's reset_after layout: the reset gate scales
h W_hidden + b_hidden).
"""

import json
import os
import shutil

import numpy as np

from tfcharrnn.models import cells
from tfcharrnn.config import SampleConfig, ServeConfig

FORMAT = "tfcharrnn-web"
FORMAT_VERSION = 1
SHARD_BYTES = 4 * 1024 * 1024          # TensorFlow.js's converter default
HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(HERE, "web")
PAGE = os.path.join(os.path.dirname(HERE), "serve", "static")
PAGE_FILES = ("app.js", "style.css", "surprise.js")          # shared with the server's page
# The page's browser back-end (web/static/): its entry point, the worker and what it runs.
RUNTIME_FILES = ("main.js", "browser.js", "worker.js", "requests.js")


def named_weights(model) -> list:
    """[(name, float32 array)] in the order the shards hold them."""
    embedding, layers, softmax = model.step_weights()
    named = []
    if embedding is not None:
        named.append(("embedding", embedding))
    keys = list(model.cell.parameters(1, 1))            # the cell's names, in its order
    for i, params in enumerate(layers):
        named.extend((f"layer_{i}/{key}", params[key]) for key in keys)
    named.extend((f"softmax/{key}", softmax[key]) for key in ("W_softmax", "b_softmax"))
    return [(name, np.asarray(value, np.float32)) for name, value in named]


def write_shards(named: list, directory: str, dtype: str = "float32",
                 shard_bytes: int = SHARD_BYTES) -> list:
    """Writes the weights' bytes, cut into shards; returns the weightsManifest (one group).

    As TensorFlow.js writes them: one buffer of all weights in order, cut every shard_bytes.
    float16 weights are listed as float32 with {"quantization": {"dtype": "float16"}}, which
    is how tfjs's loadWeights knows to widen them."""
    specs, parts = [], []
    for name, value in named:
        spec = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if dtype == "float16":
            spec["quantization"] = {"dtype": "float16"}
            value = value.astype("<f2")
        else:
            value = value.astype("<f4")
        specs.append(spec)
        parts.append(value.tobytes())
    data = b"".join(parts)
    count = max(1, -(-len(data) // shard_bytes))
    paths = [f"group1-shard{i + 1}of{count}.bin" for i in range(count)]
    for i, path in enumerate(paths):
        with open(os.path.join(directory, path), "wb") as f:
            f.write(data[i * shard_bytes:(i + 1) * shard_bytes])
    return [{"paths": paths, "weights": specs}]


def vocabulary(vocab) -> dict:
    """What the runtime needs to turn text into ids and back."""
    if vocab.level == "char":
        return {"level": "char", "tokens": list(vocab.tokens), "lowercase": vocab.lowercase,
                "start_ids": [int(i) for i in vocab.start_ids()]}
    return {"level": "word", "tokens": list(vocab.tokens),
            "lowercase": vocab.tokenizer.lowercase,
            "start_ids": [int(i) for i in vocab.start_ids()],
            "special_tokens": {"unknown": vocab.unknown_id, "start": vocab.start_id,
                               "end": vocab.end_id},
            # The runtime cannot run NLTK: it reads a text as its tokens separated by spaces
            # (README "In the browser"). The run's tokenizer is recorded for other readers.
            "tokenizer": {"kind": "spaces between NLTK tokens",
                          **vocab.tokenizer.to_dict()}}


def model_json(run, manifest: list, weights_dtype: str, parameters: int) -> dict:
    """The folder's description. `run`: a `checkpoints.Restored`."""
    model = run.config.model
    best = run.best_val_loss
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "topology": {"cell": model.model, "layers": model.num_layers,
                     "units": model.hidden_size,
                     "embedding_size": model.embedding_size,
                     "vocab_size": len(run.vocab),
                     "gate_order": list(cells.get(model.model).gate_names),
                     "gru_reset_after": model.model == "gru"},
        "vocabulary": vocabulary(run.vocab),
        "facts": {"backend": model.backend, "precision": model.precision,
                  "parameters": parameters, "steps": run.step,
                  "best_val_loss": float(best) if np.isfinite(best) else None,
                  "checkpoint": os.path.basename(run.path),
                  "weights_dtype": weights_dtype},
        "page": page_settings(),
        "weightsManifest": manifest,
    }


def page_settings() -> dict:
    """The page's defaults (`sample`'s) and limits (`serve`'s), as the server's /v1/model
    gives them."""
    sample, serve = SampleConfig(), ServeConfig()
    names = ("prime", "length", "temperature", "sampling", "top_k", "top_p", "seed", "stop",
             "num_samples", "min_length", "max_length")
    return {"defaults": {name: getattr(sample, name) for name in names},
            "limits": {"max_length": serve.max_length, "max_batch": serve.max_batch}}


def write(run, directory: str, weights_dtype: str = "float32") -> dict:
    """Writes the folder into `directory` (which exists and is empty); returns model.json."""
    named = named_weights(run.model)
    manifest = write_shards(named, directory, weights_dtype)
    parameters = int(sum(value.size for _, value in named))
    description = model_json(run, manifest, weights_dtype, parameters)
    with open(os.path.join(directory, "model.json"), "w", encoding="utf-8") as f:
        json.dump(description, f, ensure_ascii=False, indent=1)
    for name in ("tfcharrnn.js", "package.json"):      # package.json: Node reads it as ESM
        shutil.copy(os.path.join(RUNTIME, name), directory)
    shutil.copy(os.path.join(PAGE, "index.html"), directory)
    static = os.path.join(directory, "static")
    os.makedirs(static)
    for name in PAGE_FILES:
        shutil.copy(os.path.join(PAGE, name), static)
    for name in RUNTIME_FILES:
        shutil.copy(os.path.join(RUNTIME, "static", name), static)
    return description
