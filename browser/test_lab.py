"""The course as a learner sees it: every notebook run in JupyterLab, in a real browser.

nbval runs cells but renders nothing, so it cannot see a broken diagram or widget. Here
JupyterLab runs headless on a random port, Debian's Chromium (driven by Python playwright,
launched by its path: nothing downloads a browser) opens each notebook, runs all cells and
checks what a learner would see. A screenshot of each lesson goes to docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
RUN_TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on copies of the notebooks (so nothing writes outputs into the repo)."""
    home = tmp_path_factory.mktemp("home")
    work = tmp_path_factory.mktemp("notebooks")
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, work)
    settings = home / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell, not only those scrolled into view, so every diagram can be checked
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    labconfig = home / "jupyter-config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
               JUPYTER_DATA_DIR=str(home / "jupyter-data"), IPYTHONDIR=str(home / "ipython"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
         "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={work}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start") from None
            time.sleep(0.2)  # polling a port that is not open yet: nothing to wait on
    yield base
    server.terminate()
    server.wait(20)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


RUN_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session?.kernel;
  const cells = panel.content.widgets.map(c => c.model);
  const outputs = cells.filter(m => m.type === 'code').flatMap(m => m.outputs.toJSON());
  return {
    idle: kernel?.status === 'idle',
    pending: cells.filter(m => m.type === 'code' && m.executionCount === null).length,
    errors: outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
    mermaidOutputs: outputs.filter(o => (o.data?.['text/markdown'] || '')
                                        .startsWith('```mermaid')).length,
    mermaidMarkdown: cells.filter(m => m.type === 'markdown')
                          .map(m => m.sharedModel.getSource().split('```mermaid').length - 1)
                          .reduce((a, b) => a + b, 0),
    widgetOutputs: outputs.filter(o => o.data?.['application/vnd.jupyter.widget-view+json'])
                          .length,
  };
}"""


def run_all(page: Page, base: str, name: str) -> dict:
    # a fresh workspace per page, or JupyterLab reopens whatever the last page had open
    workspace = Path(name).stem + str(time.monotonic_ns())
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}?reset")
    page.wait_for_function(
        "name => { const panel = window.jupyterapp?.shell.currentWidget;"
        " return panel?.context?.path === name"
        " && panel.sessionContext?.session?.kernel?.status === 'idle'; }",
        arg=name, timeout=RUN_TIMEOUT_MS)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # more room for the lesson
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        f"() => {{ const s = ({RUN_STATE})(); return s.errors.length > 0 || "
        "(s.idle && s.pending === 0); }", timeout=RUN_TIMEOUT_MS, polling=500)
    return page.evaluate(RUN_STATE)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_lesson_renders_and_runs_in_jupyterlab(lab, browser, notebook):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    state = run_all(page, lab, notebook.name)
    assert state["errors"] == [], f"cells failed in the browser: {state['errors']}"
    assert state["pending"] == 0

    diagrams = state["mermaidMarkdown"] + state["mermaidOutputs"]
    page.wait_for_function(
        f"() => document.querySelectorAll('.jp-RenderedMermaid img, .jp-RenderedMermaid svg')"
        f".length >= {diagrams}", timeout=60_000)
    assert page.locator(".jp-RenderedMermaid.jp-mod-error, .jp-RenderedMermaid .jp-mod-error"
                        ).count() == 0, "a Mermaid diagram failed to render"

    if state["widgetOutputs"]:
        page.wait_for_selector(".jupyter-widgets", timeout=30_000)
        assert page.get_by_text("Error displaying widget").count() == 0
        assert page.get_by_text("Loading widget...").count() == 0

    if "Dashboard(" in notebook.read_text():
        check_dashboards(page, notebook.stem)

    # the screenshot shows the first picture drawn from a real run (a timeline, else a
    # sequence diagram), else the first diagram; its top at the top, so a tall one still reads
    for selector in (".jp-OutputArea .jp-RenderedImage", ".jp-OutputArea .jp-RenderedMermaid",
                     ".jp-RenderedMermaid"):
        if page.locator(selector).count():
            page.locator(selector).first.evaluate("el => el.scrollIntoView({block: 'start'})")
            break
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{notebook.stem}.png"))
    page.close()


def check_dashboards(page: Page, stem: str) -> None:
    """Every live dashboard drew its workers (a view still saying "no workers" never got a
    snapshot); the last one, as the lesson leaves it, is saved as a screenshot."""
    dashboards = page.locator(".pirate-dashboard")
    dashboards.first.wait_for(timeout=30_000)
    shown = dashboards.all_inner_texts()
    assert all(re.search(r": (ready|busy|expired)", text) for text in shown), shown
    dashboards.last.evaluate("el => el.scrollIntoView({block: 'start'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{stem}-dashboard.png"))


def test_an_experiments_run_button_gives_its_result(lab, browser):
    """Lesson 02's experiment: a real click on Run fills the widget's output anew."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    state = run_all(page, lab, "02-lazy-pirate.ipynb")
    assert state["errors"] == []
    page.evaluate("""() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel
        .requestExecute({code: 'experiment.out.clear_output()', silent: true}).done""")
    interact = page.locator(".widget-interact").first
    output = interact.locator(".jp-OutputArea")
    page.wait_for_function(
        "el => !el.innerText.includes('dead server given up after')", arg=output.element_handle(),
        timeout=10_000)
    interact.get_by_role("button", name="Run").click()
    output.get_by_text("dead server given up after").wait_for(timeout=30_000)
    interact.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "02-lazy-pirate-experiment.png"))
    page.close()
