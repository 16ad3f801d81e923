#!/usr/bin/env python3
"""Make the visdom dashboard work offline: put its JavaScript, CSS and fonts into visdom's static folder.

On start, ``python -m visdom.server`` downloads these files from CDNs; offline that fails, the page stays
blank, and a failing MathJax download kills the server. The same files are published as npm packages, so
this script fetches them with ``npm pack NAME@VERSION`` (from the npm registry or your npm mirror), puts them
under the names visdom's own download step (``visdom/server/build.py``) looks for, and writes
``static/version.built`` so the server skips the download and starts at once.

    python scripts/prepare_visdom_assets.py                  # fetch with npm and install (idempotent)
    python scripts/prepare_visdom_assets.py --check          # only report what is missing (exit 1 if any)
    python scripts/prepare_visdom_assets.py --from-dir DIR   # air-gapped: use tarballs made elsewhere with
                                                             #   npm pack (DIR/<name>-<version>.tgz)

Run it with the Python of the environment that has visdom installed (e.g. .venv/bin/python), by path as
above or as ``python -m scripts.prepare_visdom_assets`` from the repository root. It imports nothing from
the project, so that it works by path (scripts/setup_test_env.sh) and when loaded from its file (tests/conftest.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

MATHJAX_DIR = "js/mathjax/2.7.5"
# MathJax files visdom's server looks for (its build step keeps only the part of the URL before '?').
MATHJAX_FILES = (
    "config/Safe.js", "config/TeX-AMS-MML_HTMLorMML.js", "extensions/Safe.js",
    "jax/output/SVG/fonts/TeX/fontdata.js", "jax/output/SVG/jax.js",
    "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js", "jax/output/SVG/config.js", "MathJax.js",
)
GLYPHICONS = "glyphicons-halflings-regular"


@dataclass(frozen=True)
class Asset:
    package: str    # npm package name
    version: str
    member: str     # path inside the package (the tarball's top folder left out)
    target: str     # path under visdom's static/ folder

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """The file name ``npm pack`` gives this package's tarball (scoped names: '@a/b' -> 'a-b')."""
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


ASSETS = (
    Asset("jquery", "3.1.1", "dist/jquery.min.js", "js/jquery.min.js"),
    Asset("bootstrap", "3.3.7", "dist/js/bootstrap.min.js", "js/bootstrap.min.js"),
    Asset("react", "16.2.0", "umd/react.production.min.js", "js/react-react.min.js"),
    Asset("react-dom", "16.2.0", "umd/react-dom.production.min.js", "js/react-dom.min.js"),
    Asset("react-modal", "3.1.10", "dist/react-modal.min.js", "js/react-modal.min.js"),
    Asset("plotly.js-dist-min", "2.11.1", "plotly.min.js", "js/plotly-plotly.min.js"),
    Asset("sjcl", "1.0.7", "sjcl.js", "js/sjcl.js"),
    Asset("layout-bin-packer", "1.4.0", "dist/layout-bin-packer.js.map", "js/layout-bin-packer.js.map"),
    Asset("layout-bin-packer", "1.4.0", "dist/layout-bin-packer.js", "js/layout_bin_packer.js"),
    Asset("d3", "3.5.17", "d3.min.js", "js/d3.v3.min.js"),
    Asset("d3-selection-multi", "1.0.1", "build/d3-selection-multi.js", "js/d3-selection-multi.v1.js"),
    Asset("save-svg-as-png", "1.4.17", "lib/saveSvgAsPng.js", "js/saveSvgAsPng.js"),
    Asset("react-resizable", "1.4.6", "css/styles.css", "css/react-resizable-styles.css"),
    Asset("react-grid-layout", "0.16.3", "css/styles.css", "css/react-grid-layout-styles.css"),
    Asset("bootstrap", "3.3.7", "dist/css/bootstrap.min.css", "css/bootstrap.min.css"),
    Asset("classnames", "2.2.5", "index.js", "fonts/classnames"),
    *(Asset("bootstrap", "3.3.7", f"dist/fonts/{GLYPHICONS}.{ext}", f"fonts/{GLYPHICONS}.{ext}")
      for ext in ("eot", "woff2", "woff", "ttf")),
    # visdom's build step checks for the SVG font under its URL with the '#fragment'; browsers ask for
    # the plain name, so both are installed.
    Asset("bootstrap", "3.3.7", f"dist/fonts/{GLYPHICONS}.svg", f"fonts/{GLYPHICONS}.svg#glyphicons_halflingsregular"),
    Asset("bootstrap", "3.3.7", f"dist/fonts/{GLYPHICONS}.svg", f"fonts/{GLYPHICONS}.svg"),
    *(Asset("mathjax", "2.7.5", path, f"{MATHJAX_DIR}/{path}") for path in MATHJAX_FILES),
)


class AssetError(Exception):
    """A problem the user can fix; the message says how."""


def installed_visdom() -> tuple[Path, str]:
    """(static folder, version string as visdom's build step compares it) of the importable visdom."""
    spec = importlib.util.find_spec("visdom")
    if spec is None or spec.origin is None:
        raise AssetError(f"visdom is not installed for {sys.executable}; install the project requirements "
                         f"(scripts/setup_env.sh) or run this script with the environment's python")
    package_dir = Path(spec.origin).parent
    version_file = package_dir / "VERSION"
    version = version_file.read_text().strip() if version_file.is_file() else "no_version_file"
    return package_dir / "static", version


def missing_assets(static_dir: Path) -> list[Asset]:
    return [asset for asset in ASSETS if not (static_dir / asset.target).is_file()]


def version_marked(static_dir: Path, version: str) -> bool:
    marker = static_dir / "version.built"
    return marker.is_file() and marker.read_text().strip() == version


def npm_pack(specs: list[str], destination: Path) -> None:
    """Download the tarballs of ``specs`` into ``destination`` with npm."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm not found. Install Node.js/npm (Debian/Ubuntu: `apt-get install npm`; others: "
                         "https://nodejs.org), or run `npm pack " + " ".join(specs) + "` on a machine that has it "
                         "and pass the folder with --from-dir")
    print(f"fetching {len(specs)} npm packages: {' '.join(specs)}")
    result = subprocess.run([npm, "pack", "--silent", *specs], cwd=destination, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        details = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise AssetError("`npm pack` failed (is the npm registry or your mirror reachable? see `npm config get "
                         "registry`); npm said:\n  " + "\n  ".join(details))


def read_members(tarball: Path, members: set[str]) -> dict[str, bytes]:
    """The bytes of ``members`` (paths inside the package) from an npm tarball, whatever its top folder."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for info in archive:
                parts = info.name.split("/", 1)
                if info.isfile() and len(parts) == 2 and parts[1] in members:
                    found[parts[1]] = archive.extractfile(info).read()
    except (tarfile.TarError, OSError) as err:
        raise AssetError(f"cannot read {tarball} ({err}); delete it and fetch it again") from err
    absent = sorted(members - set(found))
    if absent:
        raise AssetError(f"{tarball} has no file {', '.join(absent)}; is it the right package version?")
    return found


def write_atomically(path: Path, data: bytes) -> None:
    """Temporary file and rename; a minimal stand-in for ``util.fileio.write_bytes_atomic``, which this file
    cannot import (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".part-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def install(static_dir: Path, assets: list[Asset], tarball_dir: Path) -> None:
    by_tarball: dict[Path, list[Asset]] = {}
    for asset in assets:
        by_tarball.setdefault(tarball_dir / asset.tarball_name, []).append(asset)
    for tarball, package_assets in by_tarball.items():
        if not tarball.is_file():
            raise AssetError(f"{tarball} is missing; make it with `npm pack {package_assets[0].spec}` and put it "
                             f"in {tarball_dir}")
        contents = read_members(tarball, {asset.member for asset in package_assets})
        for asset in package_assets:
            write_atomically(static_dir / asset.target, contents[asset.member])


def prepare(static_dir: Path, version: str, from_dir: Path | None) -> int:
    missing = missing_assets(static_dir)
    if missing:
        specs = sorted({asset.spec for asset in missing})
        if from_dir is not None:
            install(static_dir, missing, from_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="visdom-assets-") as download_dir:
                npm_pack(specs, Path(download_dir))
                install(static_dir, missing, Path(download_dir))
        print(f"installed {len(missing)} files from {len(specs)} packages into {static_dir}")
    if not version_marked(static_dir, version):
        write_atomically(static_dir / "version.built", version.encode())
        print(f"marked {static_dir} as built for visdom {version} (the server skips its CDN download)")
    if not missing:
        print(f"visdom assets complete in {static_dir}; nothing to do")
    return 0


def check(static_dir: Path, version: str) -> int:
    missing = missing_assets(static_dir)
    for asset in missing:
        print(f"missing: {asset.target}  (from npm {asset.spec}: {asset.member})")
    marked = version_marked(static_dir, version)
    if not marked:
        print(f"missing: version.built for visdom {version} (without it the server downloads from CDNs on start)")
    if missing or not marked:
        print(f"{len(missing)} of {len(ASSETS)} files missing in {static_dir}; run "
              f"`{sys.executable} scripts/prepare_visdom_assets.py` to install them")
        return 1
    print(f"visdom assets complete in {static_dir} ({len(ASSETS)} files, version {version})")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report missing files; exit 1 when any")
    parser.add_argument("--from-dir", type=Path, help="folder with tarballs made by `npm pack NAME@VERSION`")
    parser.add_argument("--static-dir", type=Path,
                        help="visdom's static folder (default: the one of the visdom this python imports)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        static_dir, version = installed_visdom()
        static_dir = args.static_dir or static_dir
        if args.check:
            return check(static_dir, version)
        if args.from_dir is not None and not args.from_dir.is_dir():
            raise AssetError(f"--from-dir {args.from_dir} is not a folder")
        return prepare(static_dir, version, args.from_dir)
    except PermissionError as err:
        print(f"error: cannot write {err.filename}: run this script as a user who may write to visdom's "
              f"folder, or use a virtual environment (scripts/setup_env.sh)", file=sys.stderr)
    except AssetError as err:
        print(f"error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
