"""A job's stable view (exmake.view): relative names for what it reads, so the
same work writes the same bytes in any checkout and under any job number,
even through a tool that records its command line (issue 12)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project

SAMTOOLS = shutil.which("samtools")
needs_samtools = pytest.mark.skipif(not SAMTOOLS, reason="samtools is not installed (scripts/install-test-deps)")

# samtools writes its command line into every file it makes (`@PG ... CL:`).
SAMTOOLS_RECIPE = """\
jobs:
  bam:
    run: "samtools view -b -o reads.bam {inputs.sam}"
    inputs: {sam: data/reads.sam}
  sorted:
    run: "samtools sort -o sorted.bam {deps.bam}/reads.bam"
    deps: {bam: bam}
  final:
    run: "samtools view -h -o final.sam {deps.sorted}/sorted.bam"
    deps: {sorted: sorted}
    publish: {final.sam: final.sam}
"""
HEADER = "@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:chr1\tLN:1000\n"
READS = [f"r{n}\t0\tchr1\t{pos}\t60\t4M\t*\t0\t0\tACGT\tIIII\n" for n, pos in ((1, 100), (2, 200), (3, 50))]


def samtools_project(root):
    project = Project(root)
    project.recipe(SAMTOOLS_RECIPE)
    project.write("data/reads.sam", HEADER + "".join(READS), dedent=False)
    return project


def outputs(project):
    """{job name: post.json outputs} of every job's current (LATEST) directory."""
    work = project.root / "work"
    return {name: json.loads((work / f"{name}-LATEST" / "post.json").read_text())["outputs"]
            for name in ("bam", "sorted", "final")}


def states(result):
    return {n: j["state"] for n, j in json.loads(result.out)["jobs"].items()}


@needs_samtools
def test_samtools_outputs_are_bit_identical_in_two_directories_and_under_new_job_numbers(tmp_path):
    first = samtools_project(tmp_path / "checkout-one")
    second = samtools_project(tmp_path / "elsewhere" / "checkout-two")
    first.run(expect=0)
    second.run("-B", expect=0)  # two builds there: job numbers differ from the first checkout's
    second.run("-B", expect=0)
    assert second.job_dirs("final") == ["final-1", "final-2"]
    assert outputs(first) == outputs(second)
    assert (first.root / "results/final.sam").read_bytes() == (second.root / "results/final.sam").read_bytes()
    final = first.read("results/final.sam")
    assert "CL:samtools sort -o sorted.bam deps/bam/reads.bam" in final
    assert "CL:samtools view -b -o reads.bam inputs/sam/reads.sam" in final
    assert str(tmp_path) not in final


@needs_samtools
def test_early_cutoff_holds_through_samtools(project):
    """Reordered reads make another unsorted BAM, so `sorted` runs again under a
    new number; sorting gives the same bytes (its @PG line names deps/bam, not
    bam-2), so `final` is reused."""
    project = samtools_project(project.root)
    project.run(expect=0)
    project.write("data/reads.sam", HEADER + "".join(reversed(READS)), dedent=False)
    result = project.run("--json", expect=0)
    assert states(result) == {"bam": "built", "sorted": "built", "final": "reused"}
    assert project.job_dirs("sorted") == ["sorted-1", "sorted-2"]
    work = project.root / "work"
    assert (work / "sorted-1/sorted.bam").read_bytes() == (work / "sorted-2/sorted.bam").read_bytes()


def test_the_view_is_relative_links_that_ls_shows_and_that_are_no_outputs(project):
    project.recipe("""\
        jobs:
          words:
            run: "tr ' ' '\\\\n' < {inputs.text} > words.txt"
            inputs: {text: data/book.txt}
          count:
            run: "echo {deps.words} {inputs.text} > cmd.txt; wc -l < {deps.words}/words.txt > n.txt"
            deps: {words: words}
            inputs: {text: data/book.txt}
        """)
    project.write("data/book.txt", "a b c\n")
    project.run(expect=0)
    job = project.root / "work/count-1"
    assert project.read("work/count-1/cmd.txt") == "deps/words inputs/text/book.txt\n"
    assert os.readlink(job / "deps/words") == "../../words-1"
    assert os.readlink(job / "inputs/text") == "../../../data"
    assert project.read("work/count-1/n.txt").strip() == "3"
    post = json.loads((job / "post.json").read_text())
    assert sorted(p for p, _ in post["outputs"]) == ["cmd.txt", "n.txt", "stdout.txt"]
    setup = json.loads((job / "setup.json").read_text())
    assert setup["command"] == ("echo deps/words inputs/text/book.txt > cmd.txt; "
                                "wc -l < deps/words/words.txt > n.txt")
    # A copy of the whole project still reads: the links are relative.
    copy = Project(project.root.parent / "copy")
    shutil.copytree(project.root, copy.root, symlinks=True)
    assert (copy.root / "work/count-1/deps/words/words.txt").read_text() == "a\nb\nc\n"
    assert "2 reused" in copy.run(expect=0).out


def test_globs_directories_and_sidecar_files_through_the_view(project):
    """A file input links its directory, so an index beside it is found beside it."""
    project.recipe("""\
        jobs:
          use:
            run: "cat {inputs.ref}.fai {inputs.parts} > out.txt; ls {inputs.tree} > tree.txt"
            inputs: {ref: data/ref.fa, parts: "data/parts/*.txt", tree: data/parts}
        """)
    project.write("data/ref.fa", ">chr1\n")
    project.write("data/ref.fa.fai", "chr1\t6\n")
    project.write("data/parts/a.txt", "A\n")
    project.write("data/parts/b.txt", "B\n")
    project.run(expect=0)
    assert project.read("work/use-1/out.txt") == "chr1\t6\nA\nB\n"
    assert project.read("work/use-1/tree.txt") == "a.txt\nb.txt\n"
    assert json.loads(project.read("work/use-1/setup.json"))["command"] == \
        "cat inputs/ref/ref.fa.fai inputs/parts/a.txt inputs/parts/b.txt > out.txt; ls inputs/tree > tree.txt"


def test_a_job_script_sees_relative_paths_and_sorted_sets(project):
    project.recipe("""\
        jobs:
          words:
            run: "echo x > w.txt"
          script:
            method: methods/look.py
            deps: {words: words}
            inputs: {text: data/book.txt}
        """)
    project.write("data/book.txt", "hello\n")
    project.write("methods/look.py", """\
        import os
        def synthesis(job, deps, inputs):
            job.json_save({"dep": deps.words.path, "jobid": deps.words.jobid, "input": inputs.text,
                           "read": open(inputs.text).read(), "hashseed": os.environ["PYTHONHASHSEED"],
                           "epoch": os.environ["SOURCE_DATE_EPOCH"],
                           "dep_read": deps.words.open("w.txt").read()}, "seen.json")
            return {"set", "of", "words", "to", "pickle"}
        """)
    project.run(expect=0)
    seen = json.loads(project.read("work/script-1/seen.json"))
    assert seen == {"dep": "deps/words", "jobid": "words-1", "input": "inputs/text/book.txt",
                    "read": "hello\n", "hashseed": "0", "epoch": "315532800", "dep_read": "x\n"}
    first = (project.root / "work/script-1/result.pickle").read_bytes()
    for n in range(2, 4):  # each run forks from an exmake with another hash seed
        project.run("-B", "script", expect=0, env={"PYTHONHASHSEED": str(n * 17)})
        assert (project.root / f"work/script-{n}/result.pickle").read_bytes() == first


def test_the_recipe_env_wins_over_the_fixed_defaults(project):
    project.recipe("""\
        jobs:
          env:
            run: "echo $SOURCE_DATE_EPOCH $PYTHONHASHSEED > env.txt"
            env: {SOURCE_DATE_EPOCH: "1700000000"}
        """)
    project.run(expect=0, env={"PYTHONHASHSEED": "123"})
    assert project.read("work/env-1/env.txt") == "1700000000 0\n"


def test_the_links_work_with_the_workdir_a_symlink_elsewhere(project, tmp_path):
    """A cluster's workdir is often a symlink to scratch space: `..` in a link
    is followed from where the link really is."""
    scratch = tmp_path / "scratch" / "deep" / "work"
    scratch.mkdir(parents=True)
    project.recipe("""\
        jobs:
          a:
            run: "cat {inputs.text} > a.txt"
            inputs: {text: data/t.txt}
          b:
            run: "cat {deps.a}/a.txt {inputs.text} > b.txt"
            deps: {a: a}
            inputs: {text: data/t.txt}
        """)
    project.write("data/t.txt", "t\n")
    os.symlink(scratch, project.root / "work")
    project.run(expect=0)
    assert project.read("work/b-1/b.txt") == "t\nt\n"
    assert os.readlink(scratch / "b-1/deps/a") == "../../a-1"
    assert (scratch / "b-1/inputs/text/t.txt").read_text() == "t\n"


# -- found by reviewing the stable view ------------------------------------------------------

def test_a_symlink_output_through_the_view_changes_with_what_it_leads_to(project):
    """A link's text through deps/ names no job number, so the text alone stayed the
    same while the file behind it changed, and the dependent was wrongly reused."""
    project.recipe('jobs:\n  a:\n    run: "cat {inputs.x} > a.txt"\n    inputs: {x: data/in.txt}\n'
                   '  b:\n    run: "ln -s {deps.a}/a.txt link.txt"\n    deps: {a: a}\n'
                   '  c:\n    run: "cat {deps.b}/link.txt > c.txt"\n    deps: {b: b}\n    publish: {c.txt: c.txt}\n')
    project.write("data/in.txt", "one\n")
    project.run(expect=0)
    project.write("data/in.txt", "two\n")
    project.run(expect=0)
    assert project.read("results/c.txt") == "two\n"


def test_a_job_of_its_own_deps_directory_keeps_its_files_as_outputs(project):
    project.recipe('jobs:\n  own:\n    run: "mkdir -p deps && echo mine > deps/table.txt"\n')
    project.run(expect=0)
    outputs = dict(json.loads(project.read("work/own-1/post.json"))["outputs"])
    assert "deps/table.txt" in outputs


def test_a_job_that_removes_its_view_fails_and_is_kept_for_a_look(project):
    project.recipe('jobs:\n  a: {run: "echo a > a.txt"}\n'
                   '  b:\n    run: "cat {deps.a}/a.txt > b.txt && rm -r deps"\n    deps: {a: a}\n')
    result = project.run("-k", expect=1)
    post = json.loads(project.read("work/b-1/post.json"))
    assert post["result"] == "FAILURE" and "changed its deps/ or inputs/ links" in post["reason"], result


def test_dry_run_prints_what_then_runs_for_a_glob_inside_a_word(project):
    project.recipe('jobs:\n  g:\n    run: "python3 {inputs.tool} --in={inputs.g}"\n'
                   '    inputs: {tool: argv.py, g: "parts/*.txt"}\n')
    project.write("argv.py", "import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    project.write("parts/a.txt", "a\n")
    project.write("parts/b.txt", "b\n")
    printed = [line.strip() for line in project.run("-n", expect=0).out.splitlines() if "argv.py" in line][0]
    project.run(expect=0)
    ran = json.loads(project.read("work/g-1/stdout.txt"))
    shown = subprocess.run(["bash", "-c", printed.replace("python3 inputs/tool/argv.py", "printf '%s\\n'")],
                           capture_output=True, text=True).stdout.split()
    assert ran == shown == ["--in=inputs/g/a.txt", "inputs/g/b.txt"], (printed, ran, shown)
def test_saved_sets_are_ordered_totally_and_unorderable_ones_fall_back_to_plain_pickle(project):
    """Frozensets compare by inclusion (not a total order), Decimal NaN raises on
    comparison, and a cycle through a set never ends: the first must still give
    the same bytes under every hash seed, the others must still be saved."""
    project.recipe("""\
        jobs:
          fsets:
            method: fsets.py
          cycle:
            method: cycle.py
        """)
    project.write("fsets.py", """\
        from decimal import Decimal
        def synthesis():
            return ({frozenset({"alpha"}), frozenset({"beta"}), frozenset({"gamma"}),
                     frozenset({"delta"}), frozenset({"eps"}), frozenset({"eps", "zeta"})},
                    {Decimal("NaN"), Decimal(1), Decimal("2.5")}, {float("nan"), 1.0, "one", ("t", 1)})
        """)
    project.write("cycle.py", """\
        class Node:
            def __init__(self, name):
                self.name = name
        def synthesis():
            a, b = Node("a"), Node("b")
            a.peers = {a, b}
            b.peers = {a}
            return a
        """)
    project.run(expect=0, env={"PYTHONHASHSEED": "1"})
    first = (project.root / "work/fsets-1/result.pickle").read_bytes()
    for n in range(2, 6):
        project.run("-B", "fsets", expect=0, env={"PYTHONHASHSEED": str(n * 7919)})
        assert (project.root / f"work/fsets-{n}/result.pickle").read_bytes() == first
    check = ("import importlib.util, pickle, sys;"
             "spec = importlib.util.spec_from_file_location('exmake_job_script', 'cycle.py');"
             "sys.modules[spec.name] = module = importlib.util.module_from_spec(spec);"
             "spec.loader.exec_module(module);"
             "a = pickle.load(open('work/cycle-1/result.pickle', 'rb'));"
             "assert a in a.peers and sorted(p.name for p in a.peers) == ['a', 'b']; print('ok')")
    loaded = subprocess.run([sys.executable, "-c", check], cwd=project.root, capture_output=True, text=True)
    assert loaded.stdout == "ok\n", loaded.stderr


def test_the_readmes_advice_for_an_absolute_path_works_after_the_job(project):
    """`$(realpath {deps.X})` names the dependency's own directory, which a later
    job can open; `$PWD/{deps.X}` would name the building directory, gone by then."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    provenance = readme[readme.index("## Provenance"):readme.index("## Commands")]
    assert "`$(realpath {deps.X})`" in provenance
    assert "use `\"$PWD/{deps.X}\"`" not in provenance
    project.recipe("""\
        jobs:
          a:
            run: "cat {inputs.x} > a.txt"
            inputs: {x: data/in.txt}
          b:
            run: "echo $(realpath {deps.a})/a.txt > where.txt; echo $(realpath {inputs.x}) >> where.txt"
            deps: {a: a}
            inputs: {x: data/in.txt}
          c:
            run: "cd /; cat $(cat $OLDPWD/{deps.b}/where.txt) > $OLDPWD/c.txt"
            deps: {b: b}
        """)
    project.write("data/in.txt", "one\n")
    project.run(expect=0)
    assert project.read("work/b-1/where.txt").split() == [
        os.path.realpath(project.root / "work/a-1/a.txt"), os.path.realpath(project.root / "data/in.txt")]
    assert project.read("work/c-1/c.txt") == "one\none\n"
