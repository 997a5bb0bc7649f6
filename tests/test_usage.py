"""What a job uses, and the limit on it (exmake.usage, exmake.cgroups): real
jobs that touch real memory, each way exmake may enforce `mem:` (a memory
cgroup where it may make one, else RSS sampled from /proc)."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import running_dirs, wait_for
from exmake.cgroups import PREFIX, memory_parent

MIB = 1024 * 1024
# Touches N MiB page by page (a bytearray alone may be lazily zeroed pages), then holds it a moment.
TOUCH_PY = """\
import sys, time
b = bytearray(int(sys.argv[1]) * 2**20)
b[::4096] = b"\\x01" * len(b[::4096])
time.sleep(0.3)
"""


def touching(project, jobs):
    """A recipe of jobs {name: (MiB to touch, mem: or None)}, each running TOUCH_PY."""
    project.write("touch.py", TOUCH_PY, dedent=False)
    text = "jobs:\n"
    for name, (mib, mem) in jobs.items():
        text += f"  {name}:\n    run: python3 {{inputs.tool}} {mib}\n    inputs: {{tool: touch.py}}\n"
        if mem:
            text += f"    resources: {{mem: {mem}}}\n"
    project.recipe(text)
# Reserves 4 GiB of address space and touches one page of it.
RESERVE = "python3 -c 'import mmap; m = mmap.mmap(-1, 4 * 2**30); m[0] = 1; print(len(m))'"
MODES = ["cgroup", "sampling"]


def run_env(mode):
    if mode == "cgroup" and memory_parent() is None:
        pytest.skip("exmake may make no memory cgroup here")
    return {"EXMAKE_MEMORY_LIMIT": mode}


def post(project, jobid):
    return json.loads(project.read(f"work/{jobid}/post.json"))


def leftover_cgroups():
    parent = memory_parent()
    return [] if parent is None else [n for n in os.listdir(parent[1]) if n.startswith(PREFIX)]


@pytest.mark.parametrize("mode", MODES)
def test_a_job_touching_900m_under_mem_300m_is_killed(project, mode):
    touching(project, {"big": (900, "300M")})
    result = project.run(expect=1, env=run_env(mode))
    assert re.search(r"memory limit 300M exceeded \(peak \d+M\)", result.out), result
    record = post(project, "big-1")
    assert record["reason"].startswith("memory limit 300M exceeded")
    assert record["usage"]["limited_by"] == mode and record["usage"]["mem_limit_mib"] == 300
    assert record["usage"]["peak_rss_bytes"] >= 250 * MIB
    assert leftover_cgroups() == []


@pytest.mark.parametrize("mode", MODES)
def test_reserving_address_space_is_not_using_memory(project, mode):
    project.recipe(f'jobs:\n  virt:\n    run: "{RESERVE}"\n    resources: {{mem: 300M}}\n')
    project.run(expect=0, env=run_env(mode))
    assert project.read("work/virt-1/stdout.txt").strip() == str(4 * 2 ** 30)
    assert post(project, "virt-1")["usage"]["peak_rss_bytes"] < 100 * MIB


@pytest.mark.parametrize("mode", MODES)
def test_the_recorded_peak_of_200m_is_within_a_fifth(project, mode):
    touching(project, {"touch": (200, "1G")})
    project.run(expect=0, env=run_env(mode))
    usage = post(project, "touch-1")["usage"]
    assert 0.8 * 200 * MIB <= usage["peak_rss_bytes"] <= 1.2 * 200 * MIB, usage
    assert usage["user_s"] is not None and usage["system_s"] is not None and usage["wall_s"] >= 0.3


def test_a_job_without_mem_has_its_use_recorded_too(project):
    touching(project, {"touch": (200, None)})
    result = project.run("--json", expect=0)
    usage = json.loads(result.out)["jobs"]["touch"]["usage"]
    assert 0.8 * 200 * MIB <= usage["peak_rss_bytes"] <= 1.2 * 200 * MIB
    assert "mem_limit_mib" not in usage
    shown = project.run("show", "touch", expect=0).out
    assert re.search(r"used     peak 2\d\dM  cpu user \d+\.\d\ds system \d+\.\d\ds  wall \d+\.\d\ds  cores 1",
                     shown), shown


def test_each_slice_of_a_sliced_shell_job_has_its_use(project):
    project.recipe("""\
    jobs:
      sliced:
        run: "python3 -c 'b = bytearray(({sliceno} + 1) * 50 * 2**20); b[::4096] = b\\"\\\\x01\\" * len(b[::4096])'"
        slices: 2
    """)
    project.run(expect=0)
    slices = post(project, "sliced-1")["usage"]["slices"]
    assert len(slices) == 2
    assert 40 * MIB < slices[0]["peak_rss_bytes"] < slices[1]["peak_rss_bytes"]
    assert "slice 1" in project.run("show", "sliced", expect=0).out


def test_each_slice_of_a_job_script_has_its_use(project):
    project.recipe("jobs:\n  m:\n    method: m.py\n    slices: 2\n")
    project.write("m.py", "def analysis(sliceno):\n"
                          "    b = bytearray((sliceno + 1) * 50 * 2**20)\n"
                          "    b[::4096] = b'\\x01' * len(b[::4096])\n", dedent=False)
    project.run(expect=0)
    usage = post(project, "m-1")["usage"]
    assert [s["peak_rss_bytes"] > (n + 1) * 45 * MIB for n, s in enumerate(usage["slices"])] == [True, True]
    assert usage["peak_rss_bytes"] >= usage["slices"][1]["peak_rss_bytes"]


@pytest.mark.parametrize("mode", MODES)
def test_a_job_script_over_its_limit_is_killed(project, mode):
    project.recipe("jobs:\n  m:\n    method: m.py\n    slices: 1\n    resources: {mem: 300M}\n")
    project.write("m.py", "def analysis(sliceno):\n"
                          "    b = bytearray(900 * 2**20)\n"
                          "    b[::4096] = b'\\x01' * len(b[::4096])\n", dedent=False)
    result = project.run(expect=1, env=run_env(mode))
    assert "memory limit 300M exceeded (peak" in result.out
    assert leftover_cgroups() == []


def test_status_resources_names_the_slowest_and_biggest(project):
    touching(project, {"quick": (1, None), "touch": (100, None)})
    project.run(expect=0)
    out = project.run("status", "--resources", expect=0).out
    lines = out.splitlines()
    assert lines[0].startswith("last build: ") and "SUCCESS" in lines[0]
    slowest, biggest = lines.index("slowest:"), lines.index("biggest:")
    assert lines[slowest + 1].split()[0] == "touch-1" and lines[biggest + 1].split()[0] == "touch-1"
    document = json.loads(project.run("status", "--resources", "--json", expect=0).out)
    assert document["jobs"]["touch"]["usage"]["peak_rss_bytes"] > 90 * MIB


def test_no_cgroup_is_left_after_an_interrupt(project):
    if memory_parent() is None:
        pytest.skip("exmake may make no memory cgroup here")
    project.recipe('jobs:\n  slow:\n    run: "echo started > marker; sleep 30"\n    resources: {mem: 100M}\n')
    proc = project.popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: [d for d in running_dirs(project.root, "slow-*") if (d / "marker").exists()])
    assert len(leftover_cgroups()) == 1
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert leftover_cgroups() == []


def test_a_sigkilled_builds_cgroup_is_swept_by_the_next_build(project):
    if memory_parent() is None:
        pytest.skip("exmake may make no memory cgroup here")
    project.recipe('jobs:\n  slow:\n    run: "echo $$ > pid; echo started > marker; sleep 30"\n'
                   '    resources: {mem: 100M}\n')
    proc = project.popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    marker = wait_for(lambda: next((d / "marker" for d in running_dirs(project.root, "slow-*")
                                    if (d / "marker").exists()), None))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)
    os.kill(int((marker.parent / "pid").read_text()), signal.SIGKILL)  # the job the killed build left
    wait_for(lambda: all(not open(f"{memory_parent()[1]}/{n}/cgroup.procs").read().strip()
                         for n in leftover_cgroups()))
    project.recipe('jobs:\n  other:\n    run: "true"\n    resources: {mem: 100M}\n')
    project.run(expect=0)
    assert leftover_cgroups() == []


# -- found by reviewing the memory limit -----------------------------------------------------

def test_sampling_kills_the_jobs_own_process_groups_too(project):
    touching(project, {})
    project.recipe('jobs:\n  grp:\n    run: "set -m; python3 {inputs.tool} 400 & echo $! > pid; wait"\n'
                   '    inputs: {tool: touch.py}\n    resources: {mem: 150M}\n')
    project.write("touch.py", TOUCH_PY.replace("time.sleep(0.3)", "time.sleep(20)"), dedent=False)
    result = project.run(expect=1, env={"EXMAKE_MEMORY_LIMIT": "sampling"})
    assert "memory limit 150M exceeded" in result.out, result
    from conftest import pid_alive
    pid = int(project.read("work/grp-1/pid"))
    wait_for(lambda: not pid_alive(pid), timeout=10)  # SIGKILLed: gone once the kernel freed it


@pytest.mark.parametrize("mode", MODES)
def test_pages_a_job_script_shares_with_exmake_count_once(project, mode):
    """Summed RSS counted the pages forked slices share with exmake once per slice:
    a job script that touched nothing was killed under its limit."""
    project.write("idle.py", "import time\n\ndef analysis(sliceno):\n    time.sleep(1)\n")
    project.recipe("jobs:\n  idle:\n    method: idle.py\n    slices: 8\n    resources: {mem: 150M}\n")
    project.run(expect=0, env=run_env(mode))
    assert post(project, "idle-1")["usage"]["peak_rss_bytes"] < 120 * MIB


def test_a_cgroup_a_sigkilled_build_left_goes_at_the_next_build_of_any_job(project):
    if memory_parent() is None:
        pytest.skip("exmake may make no memory cgroup here")
    project.recipe('jobs:\n  slow:\n    run: "sleep 1"\n    resources: {mem: 100M}\n  plain: {run: "true"}\n')
    build = project.popen("slow", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: any("-slow-" in n for n in leftover_cgroups()))
    build.send_signal(signal.SIGKILL)
    build.wait(timeout=20)
    time.sleep(1.5)  # the orphaned `sleep 1` ends; its cgroup is empty now
    project.run("plain", expect=0)
    assert not [n for n in leftover_cgroups() if "-slow-" in n]
