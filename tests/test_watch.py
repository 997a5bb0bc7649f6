"""`exmake watch` with the real watcher (inotify through watchdog) on real files."""

import signal
import subprocess
import time

import pytest

from conftest import running_dirs

RECIPE = """\
jobs:
  up:
    run: "tr a-z A-Z < {inputs.t} > u"
    inputs: {t: a.txt}
  other:
    run: "cat {inputs.t} > o"
    inputs: {t: b.txt}
"""


class Watching:
    """An `exmake watch` process and the lines it has printed so far."""

    def __init__(self, project, *args):
        self.project = project
        self.log = project.root / "watch.log"
        self.file = open(self.log, "w")
        self.proc = project.popen("watch", *args, stdout=self.file, stderr=subprocess.STDOUT)

    def lines(self):
        return self.log.read_text().splitlines()

    def summaries(self):
        return [line for line in self.lines() if line.startswith("exmake watch:")]

    def wait_for(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("timed out; output so far:\n" + self.log.read_text())

    def wait_summaries(self, n):
        self.wait_for(lambda: len(self.summaries()) >= n)
        return self.summaries()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=20)
        self.file.close()
        return code


@pytest.fixture
def watching(project):
    started = []

    def start(*args):
        started.append(Watching(project, *args))
        return started[-1]
    yield start
    for w in started:
        w.stop()


def setup(project, recipe=RECIPE):
    project.recipe(recipe)
    project.write("a.txt", "hi\n")
    project.write("b.txt", "b\n")


def test_an_input_change_rebuilds_the_affected_job_only(project, watching):
    setup(project)
    w = watching()
    assert "first build: 2 built" in w.wait_summaries(1)[0]
    project.write("a.txt", "bye\n")
    last = w.wait_summaries(2)[-1]
    assert "a.txt changed: 1 built, 1 reused" in last, w.lines()
    assert project.read("work/up-LATEST/u") == "BYE\n"
    assert project.job_dirs("other") == ["other-1"]


def test_a_burst_of_saves_gives_one_rebuild(project, watching):
    setup(project)
    w = watching()
    w.wait_summaries(1)
    for i in range(20):
        project.write("a.txt", f"save {i}\n")
        time.sleep(0.005)
    w.wait_summaries(2)
    time.sleep(1.0)  # time enough for any extra rebuild to show
    assert len(w.summaries()) == 2, w.lines()
    assert project.read("work/up-LATEST/u") == "SAVE 19\n"


def test_a_recipe_edit_adds_a_job(project, watching):
    setup(project)
    w = watching()
    w.wait_summaries(1)
    project.recipe(RECIPE + '  third:\n    run: "echo 3 > t"\n')
    assert "Exmakefile changed: 1 built, 2 reused" in w.wait_summaries(2)[-1]
    assert project.read("work/third-1/t") == "3\n"


def test_a_broken_recipe_keeps_the_watcher_alive(project, watching):
    setup(project)
    w = watching()
    w.wait_summaries(1)
    project.recipe("jobs: [\n")
    assert "the recipe does not load, still watching" in w.wait_summaries(2)[-1]
    assert w.proc.poll() is None
    project.recipe(RECIPE.replace("< {inputs.t} > u", "< {inputs.t} | rev > u"))
    assert "1 built, 1 reused" in w.wait_summaries(3)[-1]
    assert project.read("work/up-LATEST/u") == "IH\n"


def test_a_change_during_a_long_job_restarts_it(project, watching):
    setup(project, RECIPE.replace('"tr a-z A-Z < {inputs.t} > u"',
                                  '"cat {inputs.t} > seen; sleep 30; tr a-z A-Z < {inputs.t} > u"'))
    w = watching()
    w.wait_for(lambda: any((p / "seen").exists() for p in running_dirs(project.root, "up-*")))
    started = time.monotonic()
    project.write("a.txt", "changed\n")
    w.wait_for(lambda: any("cancel  up" in line for line in w.lines()))
    assert time.monotonic() - started < 5
    # The restarted job reads the new content.
    w.wait_for(lambda: any((p / "seen").exists() and (p / "seen").read_text() == "changed\n"
                           for p in running_dirs(project.root, "up-*")))


def test_changes_in_the_workdir_and_results_are_ignored(project, watching):
    setup(project, RECIPE.replace("> u\"", "> u\"\n    publish: {u: u}"))
    w = watching()
    w.wait_summaries(1)
    (project.root / "work/stray.txt").write_text("x")
    (project.root / "results/extra").write_text("x")
    time.sleep(1.0)
    assert len(w.summaries()) == 1, w.lines()


def test_sigint_exits_130(project, watching):
    setup(project)
    w = watching()
    w.wait_summaries(1)
    assert w.stop() == 130


def test_poll_mode_sees_changes(project, watching):
    setup(project)
    w = watching("--poll")
    w.wait_summaries(1)
    time.sleep(0.3)
    project.write("b.txt", "new\n")
    assert "b.txt changed: 1 built, 1 reused" in w.wait_summaries(2)[-1]


def test_each_watch_build_is_logged(project, watching):
    setup(project)
    w = watching()
    w.wait_summaries(1)
    project.write("a.txt", "again\n")
    w.wait_summaries(2)
    entries = project.run("urd", "default").out.splitlines()
    assert len(entries) == 2 and all("exmake watch" in e for e in entries)


def test_sigterm_exits_130(project, watching):
    setup(project)
    w = watching()
    w.wait_summaries(1)
    w.proc.send_signal(signal.SIGTERM)
    assert w.stop() == 130
