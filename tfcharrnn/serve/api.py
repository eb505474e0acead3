"""The JSON API's request bodies, and how a request becomes a sample or score job.

Request bodies are pydantic models: strict types (a length is a JSON integer, not "5"), no
unknown fields, finite numbers. Generation settings mean what `python -m tfcharrnn.sample`'s
flags mean, with the same names and defaults: a request is turned into a `SampleConfig`, whose
own checks apply (their messages name the fields instead of flags), then the server's limits.
"""

import re
from typing import List, Literal

from pydantic import BaseModel, ConfigDict, Field

from tfcharrnn import sample_lib
from tfcharrnn.config import SampleConfig, ServeConfig
from tfcharrnn.errors import UsageError

_DEFAULTS = SampleConfig()
STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class GenerateRequest(BaseModel):
    """POST /v1/generate (and /v1/generate/stream)."""
    model_config = STRICT
    prime: str = Field(_DEFAULTS.prime, description="text to start from (warms up the state)")
    length: int = Field(_DEFAULTS.length,
                        description="char level: characters to generate per sample")
    temperature: float = Field(_DEFAULTS.temperature,
                               description="divides the logits; < 1 more conservative")
    sampling: Literal["sample", "top_k", "top_p", "argmax"] = Field(
        _DEFAULTS.sampling, description="sample: from the softmax; top_k; top_p (nucleus); "
                                        "argmax: the most likely token (greedy)")
    top_k: int = Field(_DEFAULTS.top_k, description="sampling=top_k: candidates kept")
    top_p: float = Field(_DEFAULTS.top_p, description="sampling=top_p: mass of the nucleus")
    seed: int = Field(_DEFAULTS.seed, description="same seed and settings, same text")
    stop: str = Field(_DEFAULTS.stop, description="char level: end each sample at this text")
    num_samples: int = Field(_DEFAULTS.num_samples, description="independent samples")
    min_length: int = Field(_DEFAULTS.min_length,
                            description="word level: fewest words in a sentence")
    max_length: int = Field(_DEFAULTS.max_length,
                            description="word level: most tokens drawn for a sentence")


class ScoreRequest(BaseModel):
    """POST /v1/score."""
    model_config = STRICT
    texts: List[str] = Field(description="the texts to score, each on its own from a zero "
                                         "state")
    per_token: bool = Field(False, description="also return each token's loss")
    unit: Literal["text", "sentence"] = Field(
        "text", description="score each text as given, or each of its sentences (split by "
                            "the run's Punkt model, as `score --unit=sentence`)")
    sort: bool = Field(False, description="rank from most to least probable")


def as_field_names(message: str) -> str:
    """A flag-style message ("--top_p must be ...; e.g. --top_p=0.9") with field names."""
    return re.sub(r"--([a-z_]+)", r"\1", message)


def sample_config(request: GenerateRequest, vocab, limits: ServeConfig) -> SampleConfig:
    """The `SampleConfig` of a request, checked as `sample` checks its flags and against the
    server's limits; raises UsageError with a message naming the fields."""
    try:
        config = SampleConfig(**request.model_dump())
        sample_lib.check_request(config, vocab, flag=lambda name: name)
    except UsageError as e:
        raise UsageError(as_field_names(str(e))) from None
    if vocab.level == "char" and config.length > limits.max_length:
        raise UsageError(f"length={config.length} is above this server's limit of "
                         f"{limits.max_length}; ask for less (the server's --max_length sets it)")
    if vocab.level == "word" and config.max_length > limits.max_length:
        raise UsageError(f"max_length={config.max_length} is above this server's limit of "
                         f"{limits.max_length}; ask for less (the server's --max_length sets it)")
    if config.num_samples > limits.max_batch:
        raise UsageError(f"num_samples={config.num_samples} is above this server's limit of "
                         f"{limits.max_batch}; ask for fewer (the server's --max_batch sets it)")
    return config


def check_prime(config: SampleConfig, job, limits: ServeConfig):
    """A prime longer than --max_length tokens would hold every other request up."""
    tokens = job.prime_ids.shape[1]
    if config.prime and tokens > limits.max_length:
        raise UsageError(f"the prime has {tokens} tokens, above this server's limit of "
                         f"{limits.max_length}; send a shorter prime (the server's --max_length "
                         f"sets it)")


def fields(model) -> str:
    return ", ".join(model.model_fields)

