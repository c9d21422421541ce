"""Where the non-Python parts of gtkit live: static/, templates/, lambdas/, cloudformation/.

In a source checkout (and an editable install) they are the top-level folders of the repository,
so edits take effect at once. A wheel carries copies under `toolkit/_data/` (see setup.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ResourceName = Literal["static", "templates", "lambdas", "cloudformation"]
RESOURCE_NAMES: tuple[ResourceName, ...] = ("static", "templates", "lambdas", "cloudformation")

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parent


def resource_dir(name: ResourceName) -> Path:
    """The folder `name`: the checkout's own when running from source, else the packaged copy."""
    source = SOURCE_ROOT / name
    if (SOURCE_ROOT / "pyproject.toml").is_file() and source.is_dir():
        return source
    packaged = PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    raise FileNotFoundError(f"gtkit's {name}/ folder is missing: neither {source} nor {packaged} exists")
