"""The book: builds offline from a run's executed notebooks, its pages load nothing from outside the machine, hold
no path of the machine they were built on, and keep code and tables inside the text column.

The tests build the book in a folder with a space in its name: a tiny fake repository (``pyproject.toml``,
``notebooks/``, ``params/booktest.yaml`` with a relative results folder, a copy of ``book/``) whose only stage
notebook (stage 01: math, a PNG figure, a printed absolute path, a 300-character code line and a 40-column table)
is executed by the real pipeline (:func:`pipeline.run_stage`, papermill), so they do not depend on the stages' code.
The browser test opens the built pages in headless Chromium through the Chrome DevTools Protocol, served from a
loopback HTTP server, and checks the title, that every image decoded, that every request stayed on 127.0.0.1
(or was a ``data:``/``about:`` URL), and that no code block or table reaches past the text column. It is skipped,
saying why, when Chromium is not installed (``apt-get install -y chromium``, done by ``make test``; set
``CHROMIUM=/path/to/chrome`` to use another binary).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

import book
import pipeline
from glass_sm import config

REPO = pipeline.find_repo(Path(__file__))
RUN = "booktest"
STAGE = "01_data_preparation"
LONG_LINE = "x = " + repr("a" * 300)  #: a code line far wider than the text column
WIDE_COLUMNS = 40  #: columns of the table output


# ----------------------------------------------------------------------------------------------------------
# A tiny fake repository, one stage run through the pipeline, and its book
# ----------------------------------------------------------------------------------------------------------
def write_stage_notebook(path: Path) -> Path:
    """A stage notebook (not executed) shaped like ours: title, parameters, a figure, printed paths, math."""
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.language_info = {"name": "python", "version": "3.11"}
    params = v4.new_code_cell('params_file = "params/smoke.yaml"\noverrides = {}')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        v4.new_markdown_cell(
            "# Stage 01 — Data preparation (test notebook)\n\n"
            "**Overview.** A fake stage with inline math $R^2$ and display math\n\n"
            "$$\n\\mathrm{ubRMSE} = \\sqrt{\\frac{1}{n}\\sum_{t=1}^{n}\\left[(x_t-\\bar{x})-(y_t-\\bar{y})\\right]^2}"
            "\n$$"
        ),
        params,
        v4.new_code_cell(
            "import io\n"
            "from pathlib import Path\n"
            "from IPython.display import Image, display\n"
            "from matplotlib.figure import Figure\n"
            "from glass_sm import config\n\n"
            "cfg = config.load(params_file, overrides)  # the injected (relative) path is found from the repository\n"
            "fig = Figure(figsize=(3, 2))\n"
            "ax = fig.add_subplot()\n"
            "ax.plot([1982, 2000, 2021], [0.12, 0.31, 0.22])\n"
            "ax.set_ylabel('SM (m3 m-3)')\n"
            "buf = io.BytesIO()\n"
            "fig.savefig(buf, format='png', dpi=60)\n"
            "display(Image(data=buf.getvalue()))\n"
            "print('cube written to', Path.cwd() / cfg.results / 'data' / 'cube.zarr')  # absolute, as stages print"
        ),
        v4.new_code_cell(
            "import pandas as pd\n\n"
            f"{LONG_LINE}\n"
            f"pd.DataFrame([[f'value {{i}}.{{j}}' for j in range({WIDE_COLUMNS})] for i in range(3)],\n"
            f"             columns=[f'column_number_{{j}}' for j in range({WIDE_COLUMNS})])"
        ),
        v4.new_markdown_cell("## 1 A numbered section\n\nText after the figure, with a long file pattern "
                             "`<avhrr_dir>/albedo/<YYYY>/GLASS02B05.V40.A<YYYY><DDD>.<YYYYDDD-of-production>.hdf."
                             "<and-a-suffix-long-enough-to-be-wider-than-any-text-column-of-the-book>` inline."),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def copy_book_sources(dest: Path) -> Path:
    """The repository's book/ without its generated folders."""
    shutil.copytree(REPO / "book", dest,
                    ignore=shutil.ignore_patterns("_build", "chapters", ".ipynb_checkpoints", "__pycache__"))
    return dest


def write_fake_repo(root: Path) -> tuple[Path, Path]:
    """``<root>/repo`` with the layout of ours; returns ``(repo, params file)`` (results relative: ``results/``)."""
    repo = root / "repo"
    (repo / "params").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\nname = 'fake'\n")
    params = repo / "params" / f"{RUN}.yaml"
    params.write_text(f"run:\n  name: {RUN}\n  results_dir: results\n")
    write_stage_notebook(repo / "notebooks" / f"{STAGE}.ipynb")
    copy_book_sources(repo / "book")
    return repo, params


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("my book")  # a space in the folder's name
    assert " " in str(root)
    repo, params = write_fake_repo(root)
    t0 = time.perf_counter()
    executed = pipeline.run_stage(STAGE, params, repo=repo)  # papermill, cwd = the fake repository
    t1 = time.perf_counter()
    messages = []
    index = book.build_book(params, strict=True, book_dir=repo / "book", log=messages.append, repo=repo)
    seconds = time.perf_counter() - t1
    print(f"\nstage run: {t1 - t0:.1f} s; book build (1 chapter + narrative pages): {seconds:.1f} s")
    return {"index": index, "html": index.parent, "book": repo / "book", "messages": messages, "seconds": seconds,
            "root": root, "repo": repo, "executed": executed}


# ----------------------------------------------------------------------------------------------------------
# (a) the build
# ----------------------------------------------------------------------------------------------------------
def test_book_builds_from_the_executed_notebooks_of_the_run(built_book):
    html = built_book["html"]
    assert built_book["index"].is_file()
    chapter = html / "chapters" / f"{STAGE}.html"
    assert chapter.is_file()
    text = chapter.read_text()
    assert "Stage 01" in text
    assert "synthetic twin" in text and "not** a result" not in text  # the provenance box, rendered
    # the notebook's PNG output was written next to the pages and is referenced by the chapter
    pngs = re.findall(r'<img[^>]+src="(\.\./_images/[^"]+\.png)"', text)
    assert pngs, "the chapter has no PNG image"
    assert all((chapter.parent / p).resolve().is_file() for p in pngs)
    # stages without an executed notebook are skipped, said so, and left out of the toc
    assert not (html / "chapters" / "02_model_comparison.html").exists()
    assert any("skipping 02_model_comparison" in m for m in built_book["messages"])
    toc = (built_book["book"] / "chapters" / "_toc.yml").read_text()
    assert "chapters/01_data_preparation" in toc and "chapters/02_model_comparison" not in toc
    # warnings were errors
    assert any(" -W" in m for m in built_book["messages"] if "jupyter-book" in m)
    # the narrative pages
    for page in ("intro", "reproduce", "design", "cite", "bibliography"):
        assert (html / f"{page}.html").is_file(), page
    assert "doi.org/10.5194/essd-17-5181-2025" in (html / "bibliography.html").read_text()


def test_params_reference_is_generated_from_the_config(built_book):
    page = (built_book["html"] / "reproduce.html").read_text()
    for row in config.describe():
        assert f"{row['section']}.{row['key']}" in page, row
    assert "<table" in page


def test_pages_reference_nothing_outside_the_build(built_book):
    html = built_book["html"]
    for page in html.rglob("*.html"):
        text = page.read_text()
        external = re.findall(r'<(?:script|link|img|iframe|source)\b[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', text)
        assert not external, f"{page.relative_to(html)} loads {external}"
        assert not re.search(r"<script[^>]*mathjax", text, re.I), f"{page.relative_to(html)} still loads MathJax"
    math = (html / "intro.html").read_text()
    assert 'class="math"' in math and "data:image/svg+xml;base64," in math  # formulas rendered at build time


def test_no_page_shows_a_path_of_the_machine(built_book):
    """Built in a folder with a space in its name: its absolute path is in no page (nor in the search index),
    and the executed notebook got the params file relative to the repository."""
    root, html = built_book["root"], built_book["html"]
    forms = {str(root), os.path.realpath(root), str(root).replace(" ", "%20"), str(root).replace(" ", "&#32;")}
    pages = [*html.rglob("*.html"), *html.glob("*.js")]
    assert len(pages) > 5
    for page in pages:
        text = page.read_text(errors="replace")
        leaked = [f for f in forms if f in text]
        assert not leaked, f"{page.relative_to(html)} shows {leaked}"
    executed = built_book["executed"].read_text()
    assert 'params_file = \\"params/booktest.yaml\\"' in executed  # injected relative, and it was found
    assert not any(f in executed for f in forms), "the executed notebook keeps a machine path"
    chapter = (html / "chapters" / f"{STAGE}.html").read_text()
    assert "cube written to results/booktest/data/cube.zarr" in chapter  # shown relative to the repository
    assert "params/booktest.yaml" in chapter


def test_the_book_loads_its_layout_css_and_the_cite_page(built_book):
    html = built_book["html"]
    chapter = (html / "chapters" / f"{STAGE}.html").read_text()
    assert chapter.count("_static/glass_sm.css") == 1 and (html / "_static" / "glass_sm.css").is_file()
    cite = (html / "cite.html").read_text()
    for doi in ("10.5194/essd-17-5181-2025", "10.5281/zenodo.14198201", "10.5194/hess-25-5749-2021",
                "10.5194/essd-13-4349-2021", "10.1175/BAMS-D-18-0341.1"):
        assert f"doi.org/{doi}" in cite, doi
    assert "Copernicus Climate Change Service information" in cite


# ----------------------------------------------------------------------------------------------------------
# (b) a real browser
# ----------------------------------------------------------------------------------------------------------
def find_chromium() -> str | None:
    candidates = [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"]
    for c in candidates:
        if c and (shutil.which(c) or (os.path.isfile(c) and os.access(c, os.X_OK))):
            return shutil.which(c) or c
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws_url: str, timeout: float = 30.0):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True,
                                              http_no_proxy=["127.0.0.1", "localhost"])
        self._id = 0
        self.events: list[dict] = []

    def _recv(self, timeout: float) -> dict | None:
        import websocket

        self.ws.settimeout(timeout)
        try:
            return json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None

    def call(self, method: str, **params) -> dict:
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = self._recv(max(0.1, deadline - time.monotonic()))
            if msg is None:
                continue
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails']}")
        return res["result"].get("value")

    def drain(self, quiet: float = 0.5, limit: float = 15.0) -> None:
        """Collect events until none arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            msg = self._recv(quiet)
            if msg is None:
                return
            if "method" in msg:
                self.events.append(msg)

    def open(self, url: str, settle: float = 0.5, limit: float = 30.0) -> str:
        """Navigate and wait until the page (after any redirect) is complete and the network is quiet."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + limit
        last = None
        while time.monotonic() < deadline:
            self.drain(quiet=settle)
            state = self.evaluate("[document.readyState, location.href].join(' ')")
            if state.startswith("complete") and state == last:
                return state.split(" ", 1)[1]
            last = state
        raise TimeoutError(f"{url} did not finish loading")

    def close(self):
        self.ws.close()


IMAGES_JS = """(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  const done = Promise.all(imgs.map(i => (i.complete ? null : new Promise(r => {
      i.addEventListener("load", r); i.addEventListener("error", r); }))));
  await Promise.race([done, new Promise(r => setTimeout(r, 10000))]);
  return {title: document.title,
          h1: (document.querySelector("h1") || {}).textContent || "",
          images: imgs.map(i => ({src: i.currentSrc.slice(0, 60), w: i.naturalWidth, h: i.naturalHeight}))};
})()"""


LAYOUT_JS = """(() => {
  const article = document.querySelector(".bd-article") || document.body;
  const right = article.getBoundingClientRect().right;
  const clipped = (e) => {  // inside a box of the article that scrolls (or clips) sideways
    for (let a = e.parentElement; a && a !== article; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  const offenders = Array.from(article.querySelectorAll("*")).filter(e => {
      const r = e.getBoundingClientRect(); return r.width > 0 && r.right > right + 1 && !clipped(e); })
    .map(e => e.tagName + "." + String(e.className).slice(0, 40) + " " + Math.round(e.getBoundingClientRect().right));
  const scrolling = Array.from(article.querySelectorAll("pre, table, div.cell_output, div.output"))
    .filter(e => e.scrollWidth > e.clientWidth + 1).length;
  return {page: document.documentElement.scrollWidth, window: window.innerWidth, article: Math.round(right),
          offenders: offenders.slice(0, 8), scrolling: scrolling};
})()"""
"""What reaches past the text column (``.bd-article``) without a scrolling box around it, and how many boxes scroll
sideways; ``page`` wider than ``window`` means the whole page scrolls sideways."""


@pytest.fixture(scope="module")
def browser(built_book, tmp_path_factory):
    chrome = find_chromium()
    if chrome is None:
        pytest.skip("Chromium not found (looked for $CHROMIUM, chromium, chromium-browser, google-chrome, "
                    "/usr/bin/chromium); install it with `apt-get install -y chromium` to run the browser check")
    pytest.importorskip("websocket", reason="the websocket-client package drives Chromium (DevTools protocol)")
    handler = functools.partial(_QuietHandler, directory=str(built_book["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tmp_path_factory.mktemp("chromium-profile")
    cmd = [
        chrome, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--disable-extensions", "--disable-default-apps", "--no-default-browser-check", "--no-proxy-server",
        "--disable-dev-shm-usage", "--mute-audio", "--window-size=1280,900", f"--user-data-dir={profile}",
        # any name but the loopback address fails to resolve, so nothing could leave the machine anyway;
        # the test still sees (and rejects) such a request in the DevTools network log
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    devtools = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
                pytest.fail(f"Chromium did not start its DevTools endpoint ({chrome}):\n{err}")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        targets = json.loads(opener.open(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")
        devtools = DevTools(page["webSocketDebuggerUrl"])
        devtools.call("Network.enable")
        devtools.call("Page.enable")
        yield devtools, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if devtools is not None:
            devtools.close()
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the process group this fixture started
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        server.shutdown()
        server.server_close()


def _stays_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "about", "blob"):
        return True
    return parts.scheme in ("http", "https", "ws") and parts.hostname in ("127.0.0.1", "localhost")


def test_pages_render_in_chromium_without_leaving_the_machine(browser):
    devtools, base = browser
    t0 = time.perf_counter()
    pages = {}
    landed = devtools.open(f"{base}/index.html")  # index.html redirects to the root page
    assert landed.endswith("/intro.html"), landed
    pages["intro"] = devtools.evaluate(IMAGES_JS)
    devtools.open(f"{base}/chapters/{STAGE}.html")
    pages["chapter"] = devtools.evaluate(IMAGES_JS)
    layout = devtools.evaluate(LAYOUT_JS)
    devtools.open(f"{base}/reproduce.html")
    pages["reproduce"] = devtools.evaluate(IMAGES_JS)
    devtools.open(f"{base}/design.html")  # long inline code (file patterns) in text and tables
    design_layout = devtools.evaluate(LAYOUT_JS)
    devtools.drain()

    assert pages["intro"]["title"].startswith("glass-sm: the GLASS-AVHRR soil-moisture compendium")
    assert "Stage 01" in pages["chapter"]["title"] and "Stage 01" in pages["chapter"]["h1"]
    assert "Reproduce and re-parameterize" in pages["reproduce"]["title"]
    assert pages["chapter"]["images"], "the chapter shows no image"
    # the 300-character code line and the 40-column table stay inside the text column, scrolling in their box
    assert layout["article"] > 0 and layout["page"] <= layout["window"], layout
    assert not layout["offenders"], f"reach past the text column: {layout}"
    assert layout["scrolling"] >= 2, f"the long line and the wide table should scroll inside their cells: {layout}"
    assert design_layout["page"] <= design_layout["window"] and not design_layout["offenders"], design_layout
    assert pages["intro"]["images"], "the intro's formulas were not rendered as images"
    for name, page in pages.items():
        broken = [i for i in page["images"] if i["w"] <= 0 or i["h"] <= 0]
        assert not broken, f"{name}: images that did not decode: {broken}"

    events = devtools.events
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in events if e["method"] == "Network.requestWillBeSent"}
    assert urls, "the DevTools network log is empty"
    outside = sorted({u for u in urls.values() if not _stays_local(u)})
    assert not outside, f"requests left the machine: {outside}"
    failed = [(urls.get(e["params"]["requestId"]), e["params"].get("errorText"))
              for e in events if e["method"] == "Network.loadingFailed"
              and not e["params"].get("canceled")]  # a load cancelled by the next navigation is no failure
    assert not failed, f"requests failed: {failed}"
    bad = [(e["params"]["response"]["url"], e["params"]["response"]["status"])
           for e in events if e["method"] == "Network.responseReceived"
           and e["params"]["response"]["status"] >= 400 and not e["params"]["response"]["url"].endswith("favicon.ico")]
    assert not bad, f"missing files: {bad}"
    print(f"\nchromium: 3 pages, {len(urls)} requests, all local, in {time.perf_counter() - t0:.1f} s")
