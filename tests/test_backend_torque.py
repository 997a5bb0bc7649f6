"""The Torque/PBS backend. No Torque server can be installed here, so its batch
files are run as the scripts they are, and every `#PBS` directive is checked
against the qsub syntax of the Torque documentation."""

import json
import re
import shlex
import shutil
import subprocess

import pytest

from conftest import exmake_env, wait_for
from exmake.backends.torque import TorqueBackend, parse_qstat_xml, walltime

# Torque 6 qsub(1): each option exmake writes and the form the manual gives it.
QSUB_SYNTAX = {
    "-N": re.compile(r"^[A-Za-z][!-~]{0,14}$"),          # <= 15 printable, first alphabetic
    "-o": re.compile(r"^(\S+:)?/\S+$|^'(\S+:)?/[^']+'$"),  # [hostname:]path, quoted if it holds a space
    "-e": re.compile(r"^(\S+:)?/\S+$|^'(\S+:)?/[^']+'$"),
    "-q": re.compile(r"^[\w.@-]+$"),                      # destination: queue[@server]
    "-A": re.compile(r"^\S+$"),                           # account string
    "-V": None,                                           # export the environment; no argument
    "-l": re.compile(r"^(nodes=\d+(:ppn=\d+)?(:gpus=\d+)?(:[A-Za-z][\w-]*)*"
                     r"|mem=\d+(b|kb|mb|gb|tb)"
                     r"|walltime=(\d+:)?(\d\d:)?\d\d"
                     r"|qos=\S+)$"),
    "-W": re.compile(r"^depend=afterok(:[\w.-]+)+$"),
}

RECIPE = """\
profiles:
  big: {mem: 2G, time: 1d2h, partition: batch}
jobs:
  source_text:
    run: "cut -d' ' -f2- {inputs.book} > verses.txt"
    inputs: {book: book.txt}
    resources: {profile: big, account: proj42, qos: high, gpus: 1, constraint: bigmem}
  counted_words_of_the_book:
    run: "wc -w < {deps.source_text}/verses.txt > n.{sliceno}"
    deps: [source_text]
    slices: 3
    resources: {time: 90m}
"""


@pytest.fixture
def emitted(project, tmp_path):
    project.recipe(RECIPE)
    project.write("book.txt", "Ru1:1 Now it came to pass\nRu1:2 And the name of the man\n")
    out = tmp_path / "batch"
    result = project.run("emit", "--backend", "torque", "--out", out, expect=0)
    assert "submit.sh" in result.out
    return project, out


def directives(script):
    return [line[len("#PBS "):] for line in script.read_text().splitlines() if line.startswith("#PBS ")]


def test_every_directive_follows_the_qsub_syntax(emitted):
    _, out = emitted
    for script in out.glob("*.sh"):
        if script.name == "submit.sh":
            continue
        for directive in directives(script):
            option, _, value = directive.partition(" ")
            assert option in QSUB_SYNTAX, directive
            pattern = QSUB_SYNTAX[option]
            assert (pattern is None and not value) or (pattern and pattern.match(value)), directive


def test_resources_become_the_documented_directives(emitted):
    _, out = emitted
    first = directives(out / "source_text.sh")
    assert "-l nodes=1:ppn=1:gpus=1:bigmem" in first
    assert "-l mem=2048mb" in first and "-l walltime=26:00:00" in first
    assert "-q batch" in first and "-A proj42" in first and "-l qos=high" in first
    second = directives(out / "counted_words_of_the_book.sh")
    assert "-l nodes=1:ppn=3" in second  # a sliced job asks for one core per slice
    assert "-N exmake-counted_" in second  # cut to qsub's 15 characters


def test_the_scripts_do_the_job_when_run(emitted):
    project, out = emitted
    for name in ("source_text", "counted_words_of_the_book"):  # submit.sh's order
        proc = subprocess.run(["bash", str(out / f"{name}.sh")], capture_output=True, text=True,
                              env=exmake_env(None), timeout=120)
        assert proc.returncode == 0, proc
    counts = [int(project.read(f"work/counted_words_of_the_book-1/n.{n}")) for n in range(3)]
    assert counts == [11, 11, 11]
    # The same code path as a local build: a local build now reuses both jobs.
    states = {n: j["state"] for n, j in json.loads(project.run("--json", expect=0).out)["jobs"].items()}
    assert set(states.values()) == {"reused"}
    # Run again, a script reuses instead of running twice.
    proc = subprocess.run(["bash", str(out / "source_text.sh")], capture_output=True, text=True,
                          env=exmake_env(None), timeout=120)
    assert proc.returncode == 0 and "reused  source_text-1" in proc.stdout
    assert project.job_dirs("source_text") == ["source_text-1"]


def test_submit_script_chains_afterok_and_is_valid_bash(emitted):
    _, out = emitted
    submit = (out / "submit.sh").read_text()
    assert "exmake_ids[source_text]=$(qsub -o source_text.out -e source_text.err source_text.sh)" in submit
    assert ("exmake_ids[counted_words_of_the_book]=$(qsub -o counted_words_of_the_book.out "
            '-e counted_words_of_the_book.err -W depend=afterok:"${exmake_ids[source_text]}" '
            "counted_words_of_the_book.sh)") in submit
    dep = re.search(r"-W (depend=\S+)", submit).group(1).replace('"${exmake_ids[source_text]}"', "12.server")
    assert QSUB_SYNTAX["-W"].match(dep)
    assert subprocess.run(["bash", "-n", str(out / "submit.sh")]).returncode == 0


def test_a_failing_script_exits_non_zero_so_afterok_never_fires(project, tmp_path):
    project.recipe('jobs:\n  bad: {run: "exit 4"}\n')
    out = tmp_path / "b"
    project.run("emit", "--backend", "torque", "--out", out, expect=0)
    proc = subprocess.run(["bash", str(out / "bad.sh")], capture_output=True, text=True,
                          env=exmake_env(None), timeout=60)
    assert proc.returncode == 1 and "exit status 4" in proc.stdout


def test_submit_argv_uses_qsub_depend_syntax():
    assert TorqueBackend().submit_argv("a.sh", [("afterok", "1.srv"), ("afterok", "2.srv")]) == [
        "qsub", "-o", "a.out", "-e", "a.err", "-W", "depend=afterok:1.srv:2.srv", "a.sh"]
    assert TorqueBackend().submit_argv("a.sh", []) == ["qsub", "-o", "a.out", "-e", "a.err", "a.sh"]


def test_walltime_allows_more_than_a_day_of_hours():
    assert walltime(90 * 60) == "01:30:00" and walltime(26 * 3600 + 5) == "26:00:05"


QSTAT_XML = """<Data>
<Job><Job_Id>12.server</Job_Id><Job_Name>exmake-a</Job_Name><job_state>C</job_state><exit_status>0</exit_status></Job>
<Job><Job_Id>13.server</Job_Id><job_state>C</job_state><exit_status>271</exit_status></Job>
<Job><Job_Id>14.server</Job_Id><job_state>R</job_state></Job>
<Job><Job_Id>15.server</Job_Id><job_state>Q</job_state></Job>
<Job><Job_Id>16.server</Job_Id><job_state>H</job_state></Job>
</Data>"""


def test_qstat_xml_states():
    states = {k: (v.state, v.exit_code) for k, v in parse_qstat_xml(QSTAT_XML).items()}
    assert states == {"12.server": ("COMPLETED", 0), "13.server": ("FAILED", 271),
                      "14.server": ("RUNNING", None), "15.server": ("PENDING", None),
                      "16.server": ("PENDING", None)}
    assert parse_qstat_xml("") == {} and parse_qstat_xml("not xml") == {}


def test_resources_command_lists_both_forms(project):
    project.root.mkdir(parents=True)
    out = project.run("resources", expect=0).out
    assert "--cpus-per-task=N" in out and "-l nodes=1:ppn=N" in out and "walltime" in out


@pytest.mark.parametrize("bad,message", [
    ("{mem: 4Q}", "resources.mem: '4Q' is not a size"),
    ("{time: soon}", "resources.time: 'soon' is not a duration"),
    ("{cores: 0}", "resources.cores: 0 must be a whole number of at least 1"),
    ("{extra: 5}", "resources.extra: must be a string or a list of strings"),
])
def test_bad_resources_are_exit_2_naming_line_and_key(project, bad, message):
    project.recipe(f"jobs:\n  a:\n    run: x\n    resources: {bad}\n")
    result = project.run("emit", "--backend", "torque", "--out", project.root / "o", expect=2)
    assert ":4: jobs.a." in result.err and message in result.err


def test_profiles_from_the_user_config_file(project, tmp_path):
    home = tmp_path / "home"
    (home / ".config/exmake").mkdir(parents=True)
    (home / ".config/exmake/profiles.yaml").write_text("gpu:\n  gpus: 2\n  mem: 8G\nsmall:\n  cores: 1\n")
    project.recipe("profiles:\n  small: {cores: 3}\njobs:\n"
                   "  a: {run: x, resources: {profile: gpu}}\n  b: {run: x, resources: {profile: small}}\n")
    out = tmp_path / "o"
    project.run("emit", "--backend", "torque", "--out", out, expect=0, env={"HOME": str(home)})
    assert "-l nodes=1:ppn=1:gpus=2" in directives(out / "a.sh") and "-l mem=8192mb" in directives(out / "a.sh")
    assert "-l nodes=1:ppn=3" in directives(out / "b.sh")  # the recipe's own profile wins
    (home / ".config/exmake/profiles.yaml").write_text("gpu:\n  gpus: lots\n")
    result = project.run("emit", "--backend", "torque", "--out", out, expect=2, env={"HOME": str(home)})
    assert "profiles.yaml:2: profiles.gpu.gpus:" in result.err


def test_backend_choice_from_environment_and_recipe(project, tmp_path):
    project.recipe('backend: torque\njobs:\n  a: {run: "true"}\n')
    # No qsub on this PATH (slurm-wlm-torque's may be installed): choosing
    # torque is visible as the scheduler's client missing.
    result = project.run(expect=1, env={"PATH": str(tmp_path / "no-such-dir")})
    assert "qsub not found" in result.err
    assert project.run(expect=0, env={"EXMAKE_BACKEND": "local"}).code == 0
    assert "choose one of" in project.run("--backend", "nonsense", expect=2).err
    project.recipe('backend: slurmm\njobs:\n  a: {run: "true"}\n')
    assert "did you mean 'slurm'" in project.run(expect=2).err


@pytest.fixture
def real_qsub():
    """slurm-wlm-torque's qsub over the local Slurm cluster: not Torque, but a
    real qsub that reads the #PBS lines (through sbatch) and runs the job."""
    if not shutil.which("qsub") or not shutil.which("scontrol"):
        pytest.skip("qsub (slurm-wlm-torque) is not installed; see scripts/local-slurm-start")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if "UP" not in ping.stdout:
        pytest.skip("slurmctld does not answer; start it with scripts/local-slurm-start")


def test_a_project_path_with_a_space_is_submitted_with_the_real_qsub(project, tmp_path, real_qsub):
    # Issue 10, defect 15 for Torque: -o/-e/-d values were unquoted, and the
    # script path was handed to qsub whole (slurm-wlm-torque pastes it into a
    # shell command line).
    project.root = tmp_path / "my 'odd' project"
    project.recipe('jobs:\n  a: {run: "echo hi > a.txt"}\n'
                   '  b:\n    run: "cat {deps.a}/a.txt > b.txt"\n    deps: [a]\n')
    result = project.run("--backend", "torque", "--no-wait", expect=0)
    assert "torque job" in result.out
    wait_for(lambda: (project.root / "work/b-1/b.txt").exists(), timeout=120)
    assert project.read("work/b-1/b.txt") == "hi\n"
    [script] = (project.root / "work/.batch").glob("*/a.sh")
    # Torque's qsub splits a directive line as a shell would (make_argv):
    [line] = [line for line in script.read_text().splitlines() if line.startswith("#PBS -o ")]
    assert shlex.split(line) == ["#PBS", "-o", f"{script.parent}/a.out"]
    states = {n: j["state"] for n, j in json.loads(project.run("--json", expect=0).out)["jobs"].items()}
    assert states == {"a": "reused", "b": "reused"}
