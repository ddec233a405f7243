"""The book end to end: a tiny run, a real build, and the pages checked in headless Chromium.

Besides building, the test reads every page as a reader's browser shows it: no broken images,
the method page's equations typeset by the bundled MathJax (no raw ``\\[`` or ``$$`` left,
no MathJax loaded from a CDN), no page with a MathJax error (a formula MathJax could not
parse, shown in red), and no result page showing a warning, a progress bar or a path object
(``PosixPath(...)``, the value of a cell that ended in a call returning a path; checked on
the executed notebooks' outputs and on the rendered pages). Its screenshots (intro, method,
reproduce, own model, pages 01, 02, 04, 05, 08 and 09 at a 1280-pixel-wide window) are copied
to /tmp/glocal-book-screenshots/.
"""

from __future__ import annotations

import json
import os
import re
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
CHAPTERS = [
    "index.html", "book/method.html", "book/reproduce.html", "book/own_model.html",
    "book/paper_map.html", "book/limitations.html", "book/citation.html",
]  # fmt: skip
#: Result pages photographed besides the intro and the method page.
PHOTOGRAPHED = ("01_", "02_", "04_", "05_", "08_", "09_")
WINDOW = (1280, 900)
#: What a warning or a progress bar leaves in an output (tqdm text, Python warnings).
NOISE = re.compile(
    r"\d+%\|[^|]*\||\d+/\d+ \[\d\d:\d\d|it/s\]|Loading weights|"
    r"\b\w*Warning\b|warnings\.warn|IProgress"
)
WIDGET = "application/vnd.jupyter.widget-view+json"
#: A path object shown as a cell's value.
#: A MyST substitution the build left in the text: ``{{ name }}``.
SUBSTITUTION = re.compile(r"\{\{\s*[A-Za-z_]\w*\s*\}\}")
PATH_REPR = re.compile(r"\b(?:Posix|Windows)Path\(")


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
    """Whether a notebook shows a figure: inline, or glued for a ``{glue:figure}``."""
    nb = nbformat.read(notebook, as_version=4)
    return any(
        mime.endswith(("image/png", "image/svg+xml"))
        for cell in nb.cells
        for out in cell.get("outputs", [])
        for mime in out.get("data", {})
    )


def output_noise(notebook: Path) -> list[str]:
    """Outputs of an executed notebook that hold a warning, a progress bar (text or widget) or
    a path object."""
    nb = nbformat.read(notebook, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET in data:
                found.append(f"cell {index}: a progress-bar widget")
                continue
            texts = [out.get("text", "")] if out.get("output_type") == "stream" else []
            texts += [v for k, v in data.items() if k in ("text/plain", "text/html")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else str(text)
                hit = NOISE.search(text) or PATH_REPR.search(text)
                if hit or (out.get("output_type") == "stream" and out.get("name") == "stderr"):
                    line = text[max(0, hit.start() - 40) : hit.end() + 40] if hit else text[:80]
                    found.append(f"cell {index}: {line.strip()!r}")
    return found


MATH_STATE = r"""
const done = arguments[arguments.length - 1];
const report = () => {
  const main = document.querySelector('main') || document.body;
  const text = main.innerText;
  const script = document.querySelector('script[src*="mathjax"], script[src*="MathJax"]');
  done({raw: (text.match(/\\\[|\$\$/g) || []).length,
        typeset: document.querySelectorAll('mjx-container').length,
        // a parse error (merror) or an undefined macro, which MathJax shows as red text
        errors: Array.from(document.querySelectorAll(
                    'mjx-merror, [data-mjx-error], mjx-mtext[style*="color: red"]'))
                  .map(e => (e.getAttribute('data-mjx-error') ||
                             e.closest('mjx-container').textContent || 'error').slice(0, 80)),
        mathjax: script ? script.src : ''});
};
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(report, report);
} else { setTimeout(report, 3000); }
"""

PAGE_STATE = """
const main = document.querySelector('main') || document.body;
return {
  stderr: Array.from(main.querySelectorAll('.cell_output .stderr, .output.stderr'))
              .map(e => e.innerText.slice(0, 120)),
  captions: Array.from(main.querySelectorAll('figcaption')).map(e => e.innerText.slice(0, 60)),
  text: main.innerText,
};
"""


def _settle(driver, timeout: float = 15.0) -> None:
    """Wait until the page has loaded and stopped navigating.

    index.html redirects to the intro with a meta refresh, so a script run right after
    ``get`` can land mid-navigation and raise JavascriptException (seen on a fresh CI run).
    Wait for a complete document whose address stays the same across two reads.
    """
    from selenium.common.exceptions import JavascriptException, WebDriverException

    deadline, previous = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            ready = driver.execute_script("return document.readyState") == "complete"
            url = driver.current_url
        except (JavascriptException, WebDriverException):
            ready, url = False, None
        if ready and url == previous:
            return
        previous = url if ready else None
        time.sleep(0.3)
    raise AssertionError(f"{driver.current_url}: the page did not settle in {timeout} s")


def _check_page(driver, page: Path, shot: Path | None) -> dict:
    """Open ``page``; return its title, images, broken images, outputs and captions.

    With ``shot``, a full-page screenshot at the reader's window width (1280 px) is saved.
    """
    driver.set_window_size(*WINDOW)
    driver.get(page.as_uri())
    _settle(driver)
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete,"
        " i.naturalWidth]);"
    )
    state = driver.execute_script(PAGE_STATE)
    if shot is not None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WINDOW[0], max(WINDOW[1], min(int(height), 16000)))
        driver.save_screenshot(str(shot))
    broken = [src for src, complete, width in images if not complete or width == 0]
    return {"title": driver.title, "images": images, "broken": broken, **state}


def _check_math(driver, page: Path) -> dict:
    """The method page after MathJax ran: raw TeX delimiters left, typeset formulas, the script."""
    driver.set_window_size(*WINDOW)
    driver.get(page.as_uri())
    _settle(driver)
    driver.set_script_timeout(30)
    return driver.execute_async_script(MATH_STATE)


@pytest.mark.slow
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
        intro = site / "book" / "intro.md"  # its summary quotes the real pages' glued numbers
        kept = [ln for ln in intro.read_text().splitlines() if "{glue:text}`results/" not in ln]
        intro.write_text("\n".join(kept) + "\n")
    executed, build = tmp_path / "executed", tmp_path / "build"
    args = ["reproduce", "--profile", "tiny", "--jobs", "2", "--root", str(site)]
    args += ["--notebooks-dir", str(notebooks), "--executed-dir", str(executed)]
    args += ["--results-dir", str(tmp_path / "results")]
    assert main([*args, "--build-dir", str(build)]) == 0
    built = time.perf_counter() - start

    # No executed notebook may hold an error output, a warning or a progress bar.
    for name in results:
        nb = nbformat.read(executed / f"{name}.ipynb", as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{name}: a cell raised {errors[0].ename}: {errors[0].evalue}"
        noise = output_noise(executed / f"{name}.ipynb")
        assert not noise, f"{name}: outputs show warnings or progress bars: {noise[:3]}"

    html = build / "html"
    pages = [html / p for p in CHAPTERS] + [
        html / "book" / "results" / f"{n}.html" for n in results
    ]
    missing = [str(p.relative_to(html)) for p in pages if not p.is_file()]
    assert not missing, f"pages missing from the built book: {missing}"
    with_figure = next((n for n in results if _has_image(executed / f"{n}.ipynb")), results[0])

    shots = tmp_path / "screenshots"
    shots.mkdir()
    photographed = {
        "index.html": "index.png",
        "book/method.html": "method.png",
        "book/reproduce.html": "reproduce.png",
        "book/own_model.html": "own_model.png",
    }
    for n in results:
        if n.startswith(PHOTOGRAPHED) or n == with_figure:
            photographed[f"book/results/{n}.html"] = f"result_{n}.png"
    driver = _browser(browser, driver_path, Path(tempfile.mkdtemp(dir=tmp_path)))
    try:
        seen = {}
        for page in pages:
            rel = page.relative_to(html).as_posix()
            name = photographed.get(rel)
            seen[rel] = _check_page(driver, page, shots / name if name else None)
        math = _check_math(driver, html / "book" / "method.html")
        math_errors = {
            page.relative_to(html).as_posix(): _check_math(driver, page)["errors"] for page in pages
        }
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
        assert not info["stderr"], f"{rel}: shows stderr output: {info['stderr'][:2]}"
        path = PATH_REPR.search(info["text"])
        assert not path, f"{rel}: shows a path object: {info['text'][path.start() :][:80]!r}"
        left = SUBSTITUTION.search(info["text"])  # a BibTeX {{Corporate Author}} is not one
        assert not left, f"{rel}: shows a substitution that was not replaced: {left.group()}"
        if rel.startswith("book/results/"):
            hit = NOISE.search(info["text"])
            assert not hit, f"{rel}: shows a warning or progress bar: {hit.group(0)!r}"
            # the build's own section: papermill's run time and links to the page's files
            assert "Files and run time" in info["text"], f"{rel}: no files / run time section"
            assert "Papermill ran this page's notebook in" in info["text"], rel
    reproduce = seen["book/reproduce.html"]["text"]
    assert "sum of the pages" in reproduce, "no run-time table on the reproduce page"
    assert "jupyter-book" in reproduce and "minutes from empty caches" in reproduce
    if _has_image(executed / f"{with_figure}.ipynb"):
        page = seen[f"book/results/{with_figure}.html"]
        assert page["images"], "the result page has no <img>"
        if real:
            assert page["captions"], f"{with_figure}: its figures have no numbered caption"
    # The method page: every formula typeset offline by the bundled MathJax.
    assert math["mathjax"].startswith("file:"), f"MathJax is not bundled: {math['mathjax']!r}"
    assert math["typeset"] > 0, "the method page's formulas were not typeset"
    assert math["raw"] == 0, f"the method page shows {math['raw']} raw \\[ or $$ delimiters"
    errors = {rel: found for rel, found in math_errors.items() if found}
    assert not errors, f"MathJax could not typeset formulas: {errors}"
    for name in photographed.values():
        assert (shots / name).is_file(), f"no screenshot {name}"


def test_repository_notebooks_match_toc_and_profiles() -> None:
    """Every notebooks/NN_slug.ipynb has a result page in _toc.yml and quick/paper/tiny profiles."""
    from companion.pipeline.notebooks import discover, load_parameters

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
