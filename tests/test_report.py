"""What a build shows: the bar on a terminal, plain lines elsewhere, colours,
SIGUSR1 status, JUnit reports and GitHub Actions annotations."""

import os
import pty
import select
import signal
import subprocess
import sys
import time

from conftest import exmake_env

SLICED = """\
jobs:
  a: {run: "sleep 0.3; echo a > a"}
  b: {run: "sleep 0.3; echo b > b"}
  sliced:
    run: "sleep 0.5; echo {sliceno} > part.{sliceno}"
    slices: 3
    deps: [a]
"""


def run_in_pty(cwd, *args, env=None):
    """Run exmake on a pseudo-terminal; returns (exit status, everything it drew)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "exmake", *args], exmake_env(env))
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace")


def test_a_terminal_gets_a_progress_bar(project):
    project.recipe(SLICED)
    code, drawn = run_in_pty(project.root, "-j", "2")
    assert code == 0, drawn
    assert "\r" in drawn and "jobs [" in drawn and "|" in drawn, drawn
    assert "slices" in drawn  # the bar of the running sliced job
    assert "exmake: 3 jobs: 3 built" in drawn


def test_without_a_terminal_there_are_lines_and_no_carriage_returns(project):
    project.recipe(SLICED)
    result = project.run("-j", "2", expect=0)
    assert "\r" not in result.out and "\033[" not in result.out
    assert sum(line.startswith("  built") for line in result.out.splitlines()) == 3


def test_progress_never_on_a_terminal_and_always_in_a_pipe(project):
    project.recipe(SLICED)
    _, drawn = run_in_pty(project.root, "--progress", "never", "-B")
    assert "jobs [" not in drawn and "\r" not in drawn.replace("\r\n", "") and "sliced-1" in drawn
    forced = project.run("--progress", "always", "-B", expect=0)
    assert "jobs [" in forced.out


def test_colour_follows_no_color_and_force_color(project):
    project.recipe(SLICED)
    _, drawn = run_in_pty(project.root, "--progress", "never")
    assert "\033[32mbuilt" in drawn
    _, plain = run_in_pty(project.root, "--progress", "never", "-B", env={"NO_COLOR": "1"})
    assert "\033[" not in plain.replace("\033[?", "")  # no colour codes
    forced = project.run("-B", expect=0, env={"FORCE_COLOR": "1"})
    assert "\033[32mbuilt" in forced.out


def test_sigusr1_prints_the_running_jobs_and_slices(project):
    project.recipe("""\
    jobs:
      slow: {run: "sleep 3"}
      sliced:
        run: "sleep 3"
        slices: 2
    """)
    # Three cores: the sliced job holds two (one a slice), the other job the third.
    proc = project.popen("-j", "3", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    building = project.root / "work/.exmake/building"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (building.exists() and len(list(building.iterdir())) == 2):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "0 of 2 jobs done, 2 running" in err
    assert "slow-1" in err and "sliced-1" in err and "slice 0" in err and "slice 1" in err
    assert "2 cores" in err and "1 core " in err and " rss " in err and " cpu " in err  # what each holds and uses


def test_junit_report_reads_in_a_real_junit_consumer(project, tmp_path):
    from junitparser import Failure, JUnitXml, Skipped
    project.recipe("""\
    jobs:
      good: {run: "echo ok > x"}
      bad: {run: "echo 'went <wrong> & badly' >&2; exit 2"}
      after:
        run: "true"
        deps: [bad]
    """)
    report = tmp_path / "reports/junit.xml"
    project.run("-k", "--junit", report, expect=1)
    xml = JUnitXml.fromfile(str(report))
    cases = {case.name: case for suite in xml for case in suite}
    assert set(cases) == {"good", "bad", "after"}
    assert cases["good"].is_passed
    failure = cases["bad"].result[0]
    assert isinstance(failure, Failure) and "exit status 2" in failure.message
    assert "went <wrong> & badly" in failure.text
    assert isinstance(cases["after"].result[0], Skipped)
    assert xml.tests == 3 and xml.failures == 1 and xml.skipped == 1


def test_github_actions_get_error_annotations(project):
    project.recipe('jobs:\n  ok: {run: "true"}\n  bad: {run: "echo 50% done >&2; exit 1"}\n')
    result = project.run("-k", expect=1, env={"GITHUB_ACTIONS": "true"})
    errors = [line for line in result.out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, result.out
    assert "file=Exmakefile,line=3," in errors[0] and "title=exmake%3A job bad failed" in errors[0]
    assert "exit status 1%0A50%25 done" in errors[0]
    assert "::error" not in project.run("-k", "-B", expect=1).out  # not outside Actions
