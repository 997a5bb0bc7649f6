"""exmake: a daemonless, filesystem-first build tool for data and compute pipelines."""

from setuptools import find_packages, setup

from exmake import __version__

setup(
    name="exmake",
    version=__version__,
    description="A daemonless, Make-like build tool: content-hashed job directories, "
                "parallel and sliced local runs, Slurm/Torque batch jobs",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["exmake", "exmake.*"]),
    install_requires=[
        "PyYAML>=6.0",     # recipes; its C loader is used when present
        "lmdb>=1.4",       # the trace index, hash cache and build log
        "blake3>=0.3",     # content hashes: 2.6x sha256 on one core, see exmake/fs/hashing.py
        "tqdm>=4.60",      # the progress bar on a terminal (imported only when drawn)
        "watchdog>=3.0",   # `exmake watch`: inotify, or polling for network filesystems
        "numpy>=1.21",     # `chunks:`: the gear hash of content-defined chunks (exmake/chunks.py)
    ],
    extras_require={
        # junitparser: a real JUnit consumer reads --junit reports in the tests
        # import-linter: the layer contracts in .importlinter (tests/test_layers.py)
        "test": ["pytest>=7", "pytest-timeout>=2", "hypothesis>=6", "junitparser>=3", "import-linter>=2.1"],
    },
    entry_points={"console_scripts": ["exmake = exmake.cli:main"]},
    classifiers=[
        "Environment :: Console",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Topic :: Software Development :: Build Tools",
    ],
)
