"""The board in a real headless Chromium (Debian's `chromium` and `chromium-driver`, via selenium).

Clicks from a build to a job to a file and back, checks that a job's
`<script>` output and hostile file names run nothing, that states change
on screen while a build runs, and keeps screenshots of the main pages in
$EXMAKE_SHOTS (default /tmp/board-shots) to look at. Without Chromium
these tests skip on a developer's machine and fail in CI (CI=true):
scripts/install-test-deps installs it.
"""

import importlib.util
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import wait_for
from test_board import HOSTILE, HOSTILE_FILE, Board, make_project

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = os.environ.get("EXMAKE_SHOTS", "/tmp/board-shots")


def _missing():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (pip)")
    return missing


@pytest.fixture
def browser(tmp_path):
    missing = _missing()
    if missing:
        message = f"a real browser is needed and missing: {', '.join(missing)} (run scripts/install-test-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                f"--user-data-dir={profile}", "--window-size=1280,1000", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
        # every page the test saw: no console error (a CSP the browser rejects, a failed load)
        severe = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver, name):
    """A screenshot of the whole page, kept for a person to look at."""
    import base64
    os.makedirs(SHOTS, exist_ok=True)
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    path = os.path.join(SHOTS, f"{name}.png")
    with open(path, "wb") as f:
        f.write(base64.b64decode(png["data"]))
    assert os.path.getsize(path) > 1000
    return path


def no_alert(driver):
    from selenium.common.exceptions import NoAlertPresentException
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return True
    raise AssertionError(f"the page opened an alert: {text!r}")


@pytest.fixture
def board(project):
    make_project(project)
    running = Board(project)
    yield running
    running.stop()


def by_css(driver, css):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, css)


def test_click_from_a_build_to_a_job_to_a_file_and_back(browser, board):
    from selenium.webdriver.common.by import By
    browser.get(board.url)
    assert browser.title == "exmake board"
    assert "FAILURE" in by_css(browser, "#log-table").text
    shot(browser, "front")
    by_css(browser, "#log-table details summary").click()          # the build's jobs
    browser.find_element(By.LINK_TEXT, "count").click()             # count, as that build built it
    wait_for(lambda: browser.current_url.endswith("/job/count-1"))
    assert by_css(browser, "h1").text == "count-1"
    assert "slice 0" in browser.page_source and by_css(browser, "svg[aria-label=timings]")
    shot(browser, "job")
    by_css(browser, "#files a[href='/job/count-1/file/count.csv']").click()
    wait_for(lambda: browser.current_url.endswith("/job/count-1/file/count.csv"))
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#csv td")]
    assert cells == ["0", "0", "1", "1"]
    shot(browser, "file-csv")
    browser.back()
    wait_for(lambda: browser.current_url.endswith("/job/count-1"))
    browser.find_element(By.LINK_TEXT, "upper: upper-1").click()    # a dependency in the graph
    wait_for(lambda: browser.current_url.endswith("/job/upper-1"))
    browser.back()
    browser.back()
    wait_for(lambda: browser.current_url == board.url)
    assert by_css(browser, "#jobs-table")
    browser.get(board.url + "results/plot.png")
    width = browser.execute_script("var i = document.querySelector('img.preview'); "
                                   "return i && i.complete ? i.naturalWidth : 0")
    assert width == 40  # the image really loaded, from this server
    shot(browser, "results-image")
    browser.get(board.url + "job/broken-1")
    assert "failed" in by_css(browser, "#banner").text
    shot(browser, "job-failed")


def test_a_job_printing_script_and_hostile_file_names_run_nothing(browser, board):
    from selenium.webdriver.common.by import By
    browser.get(board.url + "job/upper-1")
    no_alert(browser)
    assert browser.execute_script("return window.pwned === undefined")
    log = by_css(browser, "pre.log").text
    assert HOSTILE in log and "red" in log                       # shown as text, exactly
    assert by_css(browser, "pre.log span.f1").text == "red"      # its colour as a span
    assert "<script>window.pwned=3</script>" in browser.find_element(By.TAG_NAME, "main").text  # the option
    link = browser.find_element(By.LINK_TEXT, HOSTILE_FILE)
    shot(browser, "job-hostile")
    link.click()
    no_alert(browser)
    assert browser.execute_script("return window.pwned === undefined")
    assert HOSTILE_FILE in by_css(browser, "h1").text
    browser.get(board.url + "job/upper-1/file/stdout.txt?raw=1")  # the raw log, as the browser shows text
    no_alert(browser)
    assert browser.execute_script("return window.pwned === undefined")
    assert HOSTILE in browser.find_element(By.TAG_NAME, "body").text


def test_states_change_on_screen_while_a_build_runs(browser, project):
    go = project.root / "go"
    project.recipe(f"""\
jobs:
  first:
    run: "echo one > one.txt"
  waits:
    run: "while [ ! -e {go} ]; do sleep 0.05; done; echo done > done.txt"
    deps: {{first: first}}
""")
    board = Board(project)
    build = None
    try:
        browser.get(board.url)
        assert "never built" in by_css(browser, "#jobs-table").text
        build = project.popen("-q", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def row(name):
            # read in one script: the live update may swap the rows between two calls
            rows = browser.execute_script("return Array.from(document.querySelectorAll("
                                          "'#jobs-table tbody tr'), r => r.innerText.replace(/\\s+/g, ' '))")
            return next((r for r in rows if r.startswith(name + " ")), "")

        def log_text():
            return browser.execute_script("var t = document.getElementById('log-table'); return t ? t.innerText : ''")
        wait_for(lambda: row("waits").startswith("waits running waits-1 (being built)"), timeout=60)
        shot(browser, "front-running")
        go.write_text("")
        assert build.wait(timeout=60) == 0
        wait_for(lambda: row("waits").startswith("waits fresh waits-1"), timeout=60)
        wait_for(lambda: "SUCCESS" in log_text(), timeout=60)

    finally:
        if build is not None and build.poll() is None:
            build.kill()
            build.wait()
        board.stop()


def test_a_running_jobs_page_follows_it_to_its_result(browser, project):
    go = project.root / "go"
    project.recipe(f"""\
jobs:
  waits:
    run: "echo started; while [ ! -e {go} ]; do sleep 0.05; done; echo finished"
""")
    board = Board(project)
    build = project.popen("-q", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: board.json("/")["running"], timeout=60)
        browser.get(board.url + "job/waits-1")
        assert "being built now" in by_css(browser, "#banner").text
        go.write_text("")
        assert build.wait(timeout=60) == 0

        def main_text():
            return browser.execute_script("return document.querySelector('main').innerText")
        wait_for(lambda: "SUCCESS" in main_text() and "finished" in main_text(), timeout=60)
        assert "being built now" not in main_text()
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        board.stop()
