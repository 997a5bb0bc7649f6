"""`exmake report -o FILE`: one self-contained HTML file about a build, read as text and in Chromium."""

import json
import re

import test_board_browser
from test_board import HOSTILE, make_project
from test_board_browser import by_css, no_alert, shot

browser = test_board_browser.browser   # the fixture: a real headless Chromium


def test_report_holds_jobs_reasons_timeline_usage_failures_and_results(project):
    make_project(project)
    (project.root / "out").mkdir()
    result = project.run("report", "-o", "out/report.html", expect=0)
    assert "report.html: build default/" in result.out and "4 jobs, FAILURE" in result.out
    html = (project.root / "out/report.html").read_text()
    for part in ('aria-label="timeline"', "<h2>Resources used</h2>", "<h2>Failures</h2>", "exit status 3",
                 "it broke &lt;b&gt;here&lt;/b&gt;", "count.csv", "data:image/png;base64,", "no earlier job"):
        assert part in html, part
    assert "<b>here" not in html and "window.pwned" not in html.replace("&lt;script&gt;window.pwned", "")
    # nothing is fetched: no src or href leaves the file, and the policy forbids it anyway
    assert not re.search(r'(src|href)="(https?:|//|/)', html)
    assert "default-src &#x27;none&#x27;" in html


def test_report_reasons_name_what_changed_and_what_was_reused(project):
    make_project(project)
    project.write("a.txt", "changed\n")
    project.run("-k", expect=1)
    project.run("report", "-o", "r.html", expect=0)
    html = (project.root / "r.html").read_text()
    assert "input a.txt changed" in html                        # upper, built again
    assert "same code, options and inputs as big-1" in html     # big, reused
    older = project.run("report", "-o", "first.html", "--entry", "default/first", expect=0)
    assert "default/" in older.out
    assert "no earlier job" in (project.root / "first.html").read_text()


def test_report_errors_are_exit_2_and_write_nothing(project):
    make_project(project)
    result = project.run("report", "-o", "x.html", "--entry", "default/~9", expect=2)
    assert "has only 1 entries" in result.err and not (project.root / "x.html").exists()
    assert "--entry no such: 'no such': name an entry as LIST/latest" in project.run(
        "report", "-o", "x.html", "--entry", "no such", expect=2).err
    assert "-o nowhere/x.html: no directory" in project.run("report", "-o", "nowhere/x.html", expect=2).err
    assert "-o work: a directory" in project.run("report", "-o", "work", expect=2).err
    project.recipe("jobs:\n  a:\n    run: \"true\"\n")
    (project.root / "work").rename(project.root / "old")
    result = project.run("report", "-o", "x.html", expect=2)
    assert "no build recorded" in result.err and not (project.root / "x.html").exists()


def test_report_in_the_browser_fetches_nothing_and_runs_no_job_text(browser, project):
    make_project(project)
    project.run("report", "-o", "report.html", expect=0)
    browser.get((project.root / "report.html").as_uri())
    no_alert(browser)
    assert browser.title.startswith("exmake build default/")
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert "it broke <b>here</b>" in by_css(browser, "pre.stderr").text
    width = browser.execute_script("var i = document.querySelector('img.preview'); "
                                   "return i && i.complete ? i.naturalWidth : 0")
    assert width == 40  # the embedded image shows
    rows = json.loads(browser.execute_script(
        "return JSON.stringify(Array.from(document.querySelectorAll('#jobs-table tbody tr'), "
        "r => r.cells[0].innerText + ' ' + r.cells[1].innerText))"))
    assert sorted(rows) == ["big built", "broken failed", "count built", "upper built"]
    assert HOSTILE not in browser.page_source or "&lt;script&gt;" in browser.page_source
    shot(browser, "report")


def test_report_o_refuses_special_files_and_slashes_and_writes_nothing(project, tmp_path):
    """-o naming a device node or a FIFO once replaced it with the report (as root, /dev/full);
    a trailing slash or an unwritable directory failed naming a .tmp- file, exit 1."""
    import os
    import stat
    make_project(project)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    specials = [fifo]
    if os.geteuid() == 0:   # a device node of our own, never one of /dev
        device = tmp_path / "fakedev"
        os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        specials.append(device)
    for path in specials:
        before = os.lstat(path)
        result = project.run("report", "-o", str(path), expect=2)
        assert f"-o {path}: not a regular file" in result.err and ".tmp" not in result.err
        after = os.lstat(path)
        assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    result = project.run("report", "-o", "out/", expect=2)
    assert "-o out/: names a directory" in result.err and not (project.root / "out").exists()
    result = project.run("report", "-o", "/proc/exmake-report.html", expect=2)
    assert "-o /proc/exmake-report.html:" in result.err and ".tmp" not in result.err
    if os.geteuid() != 0:   # root writes in a mode 0500 directory anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = project.run("report", "-o", str(locked / "r.html"), expect=2)
        assert "is not writable" in result.err and not os.listdir(locked)
    # a symlink to a regular file: the link is replaced by the report, its target left as it was
    target = tmp_path / "target.html"
    target.write_text("mine\n")
    os.symlink(target, project.root / "link.html")
    project.run("report", "-o", "link.html", expect=0)
    assert target.read_text() == "mine\n" and not os.path.islink(project.root / "link.html")
    assert "<h2>Failures</h2>" in (project.root / "link.html").read_text()
    assert not [n for n in os.listdir(project.root) if ".tmp" in n]


def test_report_previews_what_it_can_and_skips_what_it_must_not_read(project):
    """A CSV with a field over the csv module's limit still has a preview; a FIFO is never opened."""
    import os
    make_project(project)
    (project.root / "results/wide.csv").write_text("a,b\n" + "x" * 200_000 + ",1\n")   # a field over csv's limit
    os.mkfifo(project.root / "results/pipe.txt")
    project.run("report", "-o", "r.html", expect=0)
    html = (project.root / "r.html").read_text()
    assert "wide.csv" in html and "xxxxxxxx" in html and "pipe.txt" not in html
