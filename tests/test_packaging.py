"""A built wheel carries everything gtkit needs outside the source tree."""

import shutil
import subprocess
import sys
import zipfile

from toolkit.resources import RESOURCE_NAMES, SOURCE_ROOT, resource_dir
from toolkit.service.migrate import head_revision


def test_source_checkout_uses_its_own_folders():
    for name in RESOURCE_NAMES:
        assert resource_dir(name) == SOURCE_ROOT / name


def test_wheel_contains_data_folders_and_package_data(tmp_path):
    had_build_dir = (SOURCE_ROOT / "build").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(SOURCE_ROOT)], check=True, capture_output=True)
    if not had_build_dir:  # setuptools stages the build in ./build: leave the checkout as it was
        shutil.rmtree(SOURCE_ROOT / "build", ignore_errors=True)
    [wheel] = tmp_path.glob("gtkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in RESOURCE_NAMES:
        local = {str(p.relative_to(SOURCE_ROOT)) for p in (SOURCE_ROOT / name).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
        packed = {n.removeprefix("toolkit/_data/") for n in names if n.startswith(f"toolkit/_data/{name}/")}
        assert packed == local, f"{name}/ differs in the wheel"
    for expected in ("toolkit/schemas/call-center.yaml", "toolkit/export/presets/kto.yaml",
                     "toolkit/service/portal/static/crowd-standin.js", "toolkit/service/portal/templates/task.html",
                     # gtkit serve's Alembic scripts, run from the installed package
                     "toolkit/service/migrations/env.py", "toolkit/service/migrations/script.py.mako",
                     "toolkit/service/migrations/versions/0001_initial.py",
                     "toolkit/service/migrations/versions/0002_time_indexes.py"):
        assert expected in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any("node_modules" in n or n.endswith(".pyc") for n in names)

    # The unpacked wheel (first on sys.path, ahead of this checkout's editable install) migrates a
    # new service database with the scripts it carries.
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import toolkit; "
            "assert toolkit.__file__.startswith(sys.argv[1]), toolkit.__file__; "
            "from toolkit.service import migrate; from toolkit.service.db import Database; "
            "db = Database.for_data_dir(sys.argv[2]); migrate.upgrade(db); "
            "print(migrate.current_revision(db), migrate.MIGRATIONS)")
    done = subprocess.run([sys.executable, "-c", code, str(unpacked), str(tmp_path / "data")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    revision, location = done.stdout.split()
    assert revision == head_revision() and location.startswith(str(unpacked))
