"""The book end to end: a tiny run, a real build, and the pages checked in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from _notebooks import REPO, make_site, placeholder_notebooks, toc_results

from glocal.cli import main

SCREENSHOTS = Path("/tmp/glocal-book-screenshots")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
PLACEHOLDERS = ["01_first_result", "02_second_result", "03_third_result"]
CHAPTERS = ["index.html", "book/method.html", "book/reproduce.html", "book/own_model.html"]


def _chromium() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver; fail in CI, skip elsewhere, when missing."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "headless Chromium is not installed: apt-get install chromium chromium-driver"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _real_notebooks() -> bool:
    """Whether notebooks/ has a source for every result page of the repository's _toc.yml."""
    return all((REPO / "notebooks" / f"{name}.ipynb").is_file() for name in toc_results())


def _browser(browser: str, driver: str, profile_dir: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def _has_image(notebook: Path) -> bool:
    nb = nbformat.read(notebook, as_version=4)
    return any(
        "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )


def _check_page(driver, page: Path, shot: Path | None) -> dict:
    """Open ``page``; return its title, images and broken images; screenshot it if asked."""
    driver.set_window_size(1280, 1000)
    driver.get(page.as_uri())
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete,"
        " i.naturalWidth]);"
    )
    if shot is not None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(800, min(int(height), 8000)))
        driver.save_screenshot(str(shot))
    broken = [src for src, complete, width in images if not complete or width == 0]
    return {"title": driver.title, "images": images, "broken": broken}


def test_tiny_book_in_headless_chromium(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    browser, driver_path = _chromium()
    start = time.perf_counter()
    real = _real_notebooks()
    if real:
        request.getfixturevalue("data_dir")  # the notebooks read the offline data
        notebooks, results, site = REPO / "notebooks", toc_results(), make_site(tmp_path / "site")
    else:  # until the result notebooks exist: placeholders in a temporary notebooks folder
        notebooks, results = tmp_path / "notebooks", PLACEHOLDERS
        placeholder_notebooks(notebooks, PLACEHOLDERS)
        site = make_site(tmp_path / "site", PLACEHOLDERS)
    executed, build = tmp_path / "executed", tmp_path / "build"
    args = ["reproduce", "--profile", "tiny", "--jobs", "2", "--root", str(site)]
    args += ["--notebooks-dir", str(notebooks), "--executed-dir", str(executed)]
    args += ["--results-dir", str(tmp_path / "results")]
    assert main([*args, "--build-dir", str(build)]) == 0
    built = time.perf_counter() - start

    # No executed notebook may hold an error output.
    for name in results:
        nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{name}: a cell raised {errors[0].ename}: {errors[0].evalue}"

    html = build / "html"
    pages = [html / p for p in CHAPTERS] + [
        html / "book" / "results" / f"{n}.html" for n in results
    ]
    missing = [str(p.relative_to(html)) for p in pages if not p.is_file()]
    assert not missing, f"pages missing from the built book: {missing}"
    with_figure = next((n for n in results if _has_image(executed / f"{n}.ipynb")), results[0])

    shots = tmp_path / "screenshots"
    shots.mkdir()
    driver = _browser(browser, driver_path, Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        seen = {}
        for page in pages:
            rel = page.relative_to(html).as_posix()
            name = None
            if rel == "index.html":
                name = "index.png"
            elif rel == f"book/results/{with_figure}.html":
                name = f"result_{with_figure}.png"
            seen[rel] = _check_page(driver, page, shots / name if name else None)
    finally:
        driver.quit()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.glob("*.png"):
        shutil.copy(shot, SCREENSHOTS / shot.name)
    timing = {"mode": "real" if real else "placeholders", "build_s": round(built, 1)}
    timing["total_s"] = round(time.perf_counter() - start, 1)
    (SCREENSHOTS / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")

    for rel, info in seen.items():
        assert info["title"] and "404" not in info["title"], f"{rel}: no title"
        assert not info["broken"], f"{rel}: images did not load: {info['broken']}"
    if _has_image(executed / f"{with_figure}.ipynb"):
        assert seen[f"book/results/{with_figure}.html"]["images"], "the result page has no <img>"
    assert (shots / "index.png").is_file() and (shots / f"result_{with_figure}.png").is_file()


def test_repository_notebooks_match_toc_and_profiles() -> None:
    """Every notebooks/NN_slug.ipynb has a result page in _toc.yml and quick/paper/tiny profiles."""
    from companion.notebooks import discover, load_parameters

    folder = REPO / "notebooks"
    if not list(folder.glob("[0-9][0-9]_*.ipynb")):
        pytest.skip("no result notebooks in notebooks/ yet")
    pages = toc_results()
    for notebook in discover(folder):
        assert notebook.name in pages, (
            f"{notebook.path} has no page in _toc.yml: add {notebook.name}"
        )
        for profile in ("quick", "paper", "tiny"):
            load_parameters(notebook, profile)  # raises naming the file and the key
