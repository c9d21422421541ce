"""Packs static/, templates/, lambdas/ and cloudformation/ into the wheel as toolkit/_data/.

Everything else is in pyproject.toml. In a source checkout these folders are used in place
(toolkit/resources.py), so this only matters for built wheels.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("static", "templates", "lambdas", "cloudformation")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules", ".DS_Store")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # editable installs use the checkout's folders directly
            return
        for name in DATA_DIRS:
            source = Path(name)
            if source.is_dir():
                shutil.copytree(source, Path(self.build_lib, "toolkit", "_data", name), dirs_exist_ok=True,
                                ignore=IGNORE)


setup(cmdclass={"build_py": BuildPyWithData})
