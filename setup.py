from setuptools import find_packages, setup

setup(
    name="tfcharrnn",
    version="0.1.0",
    description="Recurrent language models (RNN, GRU, LSTM) on text, in TensorFlow/Keras: "
                "train, sample, evaluate.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfcharrnn", "tfcharrnn.*", "flags", "flags.*"]),
    package_data={"tfcharrnn": ["data/*.txt"]},
    include_package_data=True,
    install_requires=[
        # The CPU-only build on Linux x86-64 (no CUDA download); the regular one elsewhere.
        "tensorflow-cpu>=2.21; sys_platform == 'linux' and platform_machine == 'x86_64'",
        "tensorflow>=2.21; sys_platform != 'linux' or platform_machine != 'x86_64'",
        "keras>=3.10",
        "tensorboard>=2.21",  # no longer pulled in by TensorFlow
        "absl-py>=2.1",
        "numpy>=1.26",
        "nltk>=3.9",
        "tqdm>=4.66",
    ],
    extras_require={
        "test": ["pytest>=8"],
        "bench": ["torch==2.13.0"],
    },
)
