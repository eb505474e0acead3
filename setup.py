import os

from setuptools import find_packages, setup

# One TensorFlow distribution, never two: `tensorflow-cpu` and `tensorflow` ship the same
# files, and installing one over the other breaks both. On Linux x86-64 the default is the
# CPU-only build (no CUDA download); TFCHARRNN_GPU=1 asks for TensorFlow with its CUDA
# libraries instead (the `and-cuda` extra), for a machine with an NVIDIA GPU. Elsewhere the
# regular `tensorflow` package is the only one.
if os.environ.get("TFCHARRNN_GPU", "") == "1":
    TENSORFLOW = ["tensorflow[and-cuda]>=2.21; sys_platform == 'linux'",
                  "tensorflow>=2.21; sys_platform != 'linux'"]
else:
    TENSORFLOW = [
        "tensorflow-cpu>=2.21; sys_platform == 'linux' and platform_machine == 'x86_64'",
        "tensorflow>=2.21; sys_platform != 'linux' or platform_machine != 'x86_64'",
    ]

# python -m tfcharrnn.serve: an ASGI app (FastAPI on Starlette) under uvicorn.
SERVE = ["fastapi>=0.110", "uvicorn>=0.29"]

setup(
    name="tfcharrnn",
    version="0.1.0",
    description="Recurrent language models (RNN, GRU, LSTM) on text, in TensorFlow/Keras: "
                "train, sample, evaluate.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfcharrnn", "tfcharrnn.*", "flags", "flags.*"]),
    package_data={"tfcharrnn": ["data/*.txt", "serve/static/*", "export/web/*.js",
                                "export/web/*.json", "export/web/static/*.js"],
                  "flags": ["presets/*.cfg", "presets/*/*.cfg"]},
    include_package_data=True,
    install_requires=TENSORFLOW + [
        # <3.16: the train step relies on Keras' private optimizer hook
        # _all_reduce_sum_gradients (tfcharrnn/steps.py); the replica tests check it.
        "keras>=3.10,<3.16",
        "tensorboard>=2.21",  # no longer pulled in by TensorFlow
        "absl-py>=2.1",
        "numpy>=1.26",
        "nltk>=3.9",
        "tqdm>=4.66",
    ],
    extras_require={
        # the tests drive the server (and its page in Chromium through Selenium); they run on
        # two processes (pytest -n 2, pytest-xdist)
        "test": ["pytest>=8", "pytest-xdist>=3.5", "matplotlib>=3.8", "hypothesis>=6.100"]
        + SERVE + ["httpx>=0.27", "selenium>=4.20"],
        "plot": ["matplotlib>=3.8"],   # python -m tfcharrnn.plot
        "serve": SERVE,                # python -m tfcharrnn.serve
        "bench": ["torch==2.13.0"],
    },
)
