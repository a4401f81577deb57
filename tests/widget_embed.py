"""Open a notebook exported by ``jupyter nbconvert --to html`` in Chromium with its widgets live, offline.

The exported page loads ``@jupyter-widgets/html-manager``'s ``embed-amd.js`` from unpkg and
RequireJS from cdnjs. Neither CDN is reachable in the tests, so :func:`html_manager` fetches the two
npm packages once (``npm pack``, pinned versions, npm checks their integrity) into a cache folder
and :func:`open_exported` answers the page's requests from there (Playwright ``page.route``):
the page itself, the manager and its fonts, RequireJS. Every other request (MathJax, ...) is
refused and listed.

The cache is ``$ES_INFER_NB_TEST_CACHE`` or ``~/.cache/es_infer_nb-tests``. Screenshots go to the
test's tmp dir, or under ``$ES_INFER_NB_SCREENSHOTS`` when set (to keep them, e.g. as CI artifacts).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from external import CHROMIUM

#: ipywidgets 8 writes widget state version 2.0: html-manager 1.x renders it
HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"
REQUIREJS = "requirejs@2.3.8"
#: the page's own (made-up) address: requests to it are answered from the exported HTML
PAGE_URL = "http://exported.notebook.invalid/notebook.html"
HOW = "npm and the npm registry (npm pack " + HTML_MANAGER + " " + REQUIREJS + ")"


@dataclass(frozen=True)
class Manager:
    dist: Path  # html-manager's dist/ (embed-amd.js and its fonts)
    requirejs: Path  # require.js


def cache_dir() -> Path:
    return Path(os.environ.get("ES_INFER_NB_TEST_CACHE") or Path.home() / ".cache" / "es_infer_nb-tests")


@functools.cache
def html_manager() -> Manager | None:
    """The widget manager and RequireJS, fetched once into the cache; None when npm cannot get them."""
    root = cache_dir() / "npm" / f"{_slug(HTML_MANAGER)}+{_slug(REQUIREJS)}"
    found = Manager(root / "html-manager" / "package" / "dist", root / "requirejs" / "package" / "require.js")
    if (found.dist / "embed-amd.js").is_file() and found.requirejs.is_file():
        return found
    npm = shutil.which("npm")
    if npm is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([npm, "pack", HTML_MANAGER, REQUIREJS, "--pack-destination", tmp, "--silent"],
                                  capture_output=True, text=True, timeout=300, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired):
            return None
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 2:
            return None
        staging = Path(tempfile.mkdtemp(dir=_ensure(root.parent)))
        for tarball in tarballs:
            name = "requirejs" if tarball.name.startswith("requirejs") else "html-manager"
            with tarfile.open(tarball) as archive:
                archive.extractall(staging / name, filter="data")
    try:
        staging.rename(root)  # atomic; fails when another test process got there first
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return found if (found.dist / "embed-amd.js").is_file() and found.requirejs.is_file() else None


def _slug(spec: str) -> str:
    return re.sub(r"[^\w.@-]+", "_", spec.lstrip("@"))


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_html(notebook: Path) -> str:
    """``jupyter nbconvert --to html`` of ``notebook`` (the lab template), as text."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(notebook))
    return body


@dataclass
class Requests:
    served: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def open_exported(page, html_text: str, manager: Manager) -> Requests:
    """Load ``html_text`` in ``page`` as if from a web server; the CDNs answered from ``manager``."""
    seen = Requests()

    def answer(route) -> None:
        url = route.request.url
        name = url.split("?")[0].rsplit("/", 1)[-1]
        if url.split("?")[0] == PAGE_URL:
            seen.served.append(url)
            route.fulfill(body=html_text, content_type="text/html; charset=utf-8")
        elif "@jupyter-widgets/html-manager@" in url and (manager.dist / name).is_file():
            seen.served.append(url)
            route.fulfill(path=str(manager.dist / name))
        elif url.startswith(PAGE_URL.rsplit("/", 1)[0] + "/") and (manager.dist / name).is_file():
            seen.served.append(url)  # the manager's fonts, relative to the page
            route.fulfill(path=str(manager.dist / name))
        elif re.search(r"/require(\.min)?\.js$", url.split("?")[0]):
            seen.served.append(url)
            route.fulfill(path=str(manager.requirejs), content_type="application/javascript")
        else:
            seen.refused.append(url)
            route.abort()

    page.route(re.compile(r"^https?://"), answer)
    page.goto(PAGE_URL)
    return seen


@contextlib.contextmanager
def exported_page(html_text: str, manager: Manager, viewport: dict[str, int]) -> Iterator[tuple[Any, list[str], Requests]]:
    """Headless Chromium showing ``html_text`` (:func:`open_exported`): ``(page, page errors, requests)``;
    the browser is closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=viewport)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors, open_exported(page, html_text, manager)
        finally:
            browser.close()


def widget_fixture_cell(folder: Path) -> str:
    """A notebook cell building the widget tests' fixtures (tests/widgets/conftest.py in ``folder``):
    ``eng`` with the xgboost regression ``reg`` and 3-class ``cls`` models, five ``rows`` r0-r4 and
    their results ``reg`` / ``cls`` with 3 feature importances (and every class for ``cls``)."""
    return (f"import sys\nsys.path.insert(0, {json.dumps(str(folder))})\n"
            "from conftest import fitted_engine, training_frame\n"
            "from es_infer_nb import widgets\n"
            "eng = fitted_engine()\n"
            "rows = training_frame().head(5).set_axis(['r0', 'r1', 'r2', 'r3', 'r4'])\n"
            "reg = rows.infer.run('reg', engine=eng, progress=False,\n"
            "    inference_config={'regression': {'num_top_feature_importance_values': 3}})\n"
            "cls = rows.infer.run('cls', engine=eng, progress=False, inference_config={'classification': {\n"
            "    'num_top_classes': -1, 'num_top_feature_importance_values': 3}})\n")


def screenshot_dir(tmp_path: Path, test: str) -> Path:
    """Where a test writes its screenshots: ``$ES_INFER_NB_SCREENSHOTS/<test>`` or ``tmp_path/screenshots``."""
    root = os.environ.get("ES_INFER_NB_SCREENSHOTS")
    folder = Path(root) / test if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class Pixels:
    width: int
    height: int
    ink: float  # share of pixels that differ from the image's top-left (background) colour
    colours: int  # distinct colours (each channel in steps of 16)


def pixels(page, png: bytes) -> Pixels:
    """Decode ``png`` in the browser (a canvas) and measure it: is something drawn, in what colours."""
    data = "data:image/png;base64," + base64.b64encode(png).decode()
    stats = page.evaluate(
        """async (src) => {
            const img = new Image(); img.src = src; await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(0, 0, c.width, c.height).data;
            let ink = 0; const colours = new Set();
            for (let i = 0; i < d.length; i += 4) {
                if (Math.abs(d[i] - d[0]) + Math.abs(d[i+1] - d[1]) + Math.abs(d[i+2] - d[2]) > 24) ink++;
                colours.add(((d[i] >> 4) << 8) | ((d[i+1] >> 4) << 4) | (d[i+2] >> 4));
            }
            return {width: c.width, height: c.height, ink: ink / (c.width * c.height), colours: colours.size};
        }""", data)
    return Pixels(int(stats["width"]), int(stats["height"]), float(stats["ink"]), int(stats["colours"]))
