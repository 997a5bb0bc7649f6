"""Job families (`foreach:`): instances, fan-in, growth and shrinking, targets,
references, grouped views and every bad input (issue 11)."""

import json
import os

import pytest

from conftest import age
from test_noop_fast_path import FAST

PIPELINE = """\
jobs:
  index:
    run: "cp {inputs.genome} genome.fa"
    inputs: {genome: data/genome.fa}
  map:
    foreach: {sample: "data/samples/*.fastq"}
    inputs: {reads: "data/samples/{each.sample}.fastq"}
    deps: {index: index}
    run: "cat {deps.index}/genome.fa {inputs.reads} > {each.sample}.sam"
  sort:
    foreach: {sample: map}
    deps: {mapped: "map@{each.sample}"}
    run: "sort {deps.mapped}/{each.sample}.sam > {each.sample}.bam"
    publish: {"bam/{each.sample}.bam": "{each.sample}.bam"}
  call:
    deps: {bams: "sort@*"}
    run: "for d in {deps.bams}; do echo $d; cat $d/*.bam; done > all.vcf"
    publish: {all.vcf: all.vcf}
"""


def states(result):
    return {n: j["state"] for n, j in json.loads(result.out)["jobs"].items()}


def pipeline(project, samples=("A", "B", "C")):
    project.recipe(PIPELINE)
    project.write("data/genome.fa", "ref\n")
    for sample in samples:
        project.write(f"data/samples/{sample}.fastq", f"reads {sample}\n")


def test_a_glob_family_with_fan_in_builds_in_value_order(project):
    pipeline(project, ("B", "A", "C"))
    result = project.run("--json", expect=0)
    assert states(result) == {"index": "built", "map@A": "built", "map@B": "built", "map@C": "built",
                              "sort@A": "built", "sort@B": "built", "sort@C": "built", "call": "built"}
    vcf = project.read("results/all.vcf").splitlines()
    words = [line for line in vcf if line.startswith("deps/")]
    assert words == ["deps/bams/A", "deps/bams/B", "deps/bams/C"]  # one shell word each, in value order
    assert [os.readlink(project.root / "work/call-1" / w) for w in words] == \
        ["../../../sort@A-1", "../../../sort@B-1", "../../../sort@C-1"]  # ls -l shows what it read
    assert project.read("results/bam/B.bam") == "reads B\nref\n"
    setup = json.loads(project.read("work/call-1/setup.json"))
    assert sorted(setup["deps"]) == ["bams@A", "bams@B", "bams@C"]


def test_a_new_match_adds_exactly_its_jobs_and_reruns_the_fan_in(project):
    pipeline(project)
    project.run(expect=0)
    project.write("data/samples/D.fastq", "reads D\n")
    result = states(project.run("--json", expect=0))
    assert {n for n, s in result.items() if s == "built"} == {"map@D", "sort@D", "call"}
    assert project.read("results/bam/D.bam") == "reads D\nref\n"


def test_a_value_that_goes_away_drops_its_jobs_and_its_results(project):
    pipeline(project)
    project.run(expect=0)
    os.unlink(project.root / "data/samples/B.fastq")
    result = project.run("--json", expect=0)
    assert "map@B" not in states(result) and "sort@B" not in states(result)
    assert {n for n, s in states(result).items() if s == "built"} == {"call"}
    assert not (project.root / "results/bam/B.bam").exists()
    assert project.read("results/bam/A.bam") == "reads A\nref\n"
    said = project.run(expect=0)  # nothing left to say
    assert "unpublished" not in said.out


def test_the_build_says_which_results_it_unpublished(project):
    pipeline(project)
    project.run(expect=0)
    os.unlink(project.root / "data/samples/C.fastq")
    result = project.run(expect=0)
    assert "unpublished results/bam/C.bam (job sort@C is no longer in the recipe)" in result.out


def test_the_no_op_fast_path_sees_a_family_grow_and_shrink(project):
    pipeline(project)
    age(project.root)
    project.run(expect=0)
    assert FAST in project.run("-v", expect=0).out
    project.write("data/samples/D.fastq", "reads D\n")
    age(project.root, 5)
    grown = project.run("-v", "--json", expect=0)
    assert states(grown)["map@D"] == "built"
    os.unlink(project.root / "data/samples/A.fastq")
    age(project.root, 5)
    shrunk = project.run("--json", expect=0)
    assert "map@A" not in states(shrunk)


def test_a_sample_sheet_family_grows_line_by_line(project):
    project.recipe('jobs:\n  qc:\n    foreach: {sample: {lines: samples.txt}}\n'
                   '    run: "echo {each.sample} > qc.txt"\n')
    project.write("samples.txt", "# sample sheet\nS1\n\nS2\n")
    assert states(project.run("--json", expect=0)) == {"qc@S1": "built", "qc@S2": "built"}
    project.write("samples.txt", "# sample sheet\nS1\n\nS2\nS-3\n")
    assert states(project.run("--json", expect=0)) == {"qc@S1": "reused", "qc@S2": "reused", "qc@S-3": "built"}
    assert project.read("work/qc@S-3-LATEST/qc.txt") == "S-3\n"


TRAIN = """\
jobs:
  train:
    foreach: {model: [cnn, xgb], lr: [0.1, 0.01]}
    options: {model: "{each.model}", lr: "{each.lr}"}
    method: train.py
  report:
    deps: {runs: "train@*"}
    method: report.py
"""


def test_lists_make_the_cross_product_named_in_variable_order_with_typed_values(project):
    project.recipe(TRAIN)
    project.write("train.py", 'options = {"model": "", "lr": 1.0}\n\n'
                              'def synthesis(options, job):\n    job.json_save([options["model"], options["lr"]], "m.json")\n')
    project.write("report.py", "def synthesis(deps, job):\n"
                               "    job.json_save([d.json_load('m.json') for d in deps.runs], 'all.json')\n")
    result = project.run("--json", expect=0)
    assert set(states(result)) == {"train@cnn,0.1", "train@cnn,0.01", "train@xgb,0.1", "train@xgb,0.01", "report"}
    assert json.loads(project.read("work/train@xgb,0.01-1/m.json")) == ["xgb", 0.01]
    assert json.loads(project.read("work/report-1/all.json")) == [
        ["cnn", 0.1], ["cnn", 0.01], ["xgb", 0.1], ["xgb", 0.01]]


def test_targets_a_whole_family_or_one_job(project):
    pipeline(project)
    one = states(project.run("--json", "sort@B", expect=0))
    assert one == {"index": "built", "map@B": "built", "sort@B": "built"}
    family = states(project.run("--json", "map", expect=0))
    assert family == {"index": "reused", "map@A": "built", "map@B": "reused", "map@C": "built"}


def test_instance_references_work_in_every_command(project):
    pipeline(project)
    project.run(expect=0)
    work = project.root / "work"
    for ref, jobid in (("map@A", "map@A-1"), ("map@A-LATEST", "map@A-1"), ("map@A~0", "map@A-1"),
                       ("map@A-1", "map@A-1"), (":default/latest:sort@B", "sort@B-1")):
        assert project.run("path", ref, expect=0).out.strip() == str(work / jobid), ref
    assert "job      sort@C-1" in project.run("show", "sort@C", expect=0).out
    assert "sort@B: fresh" in project.run("why", "call", expect=0).out
    assert "is a family of 3 jobs" in project.run("path", "map", expect=2).err


def test_human_views_group_a_family_where_its_jobs_agree(project):
    pipeline(project)
    project.run(expect=0)
    status = project.run("status", expect=0).out
    assert "map@{A,B,C}" in status and "3 jobs" in status
    project.write("data/samples/B.fastq", "reads B, again\n")
    status = project.run("status", expect=0).out.splitlines()
    assert any(line.startswith("fresh") and "map@{A,C}" in line for line in status), status
    assert any(line.startswith("stale") and "map@B " in line and "changed" in line for line in status), status
    dry = project.run("-n", expect=0).out
    assert "map@{A,C} (2 jobs)" in dry and "stale   map@B" in dry
    assert set(json.loads(project.run("status", "--json", expect=0).out)) >= {"map@A", "map@B", "map@C"}


def test_two_instances_never_share_a_job_directory(project):
    project.recipe('jobs:\n  same:\n    foreach: {x: [a, b]}\n    run: "echo same > out"\n')
    project.run(expect=0)
    keys = {json.loads(project.read(f"work/same@{v}-1/setup.json"))["key"] for v in "ab"}
    assert len(keys) == 2


def test_an_empty_family_is_shown_and_a_fan_in_over_it_runs_with_no_directories(project):
    project.recipe('jobs:\n  each:\n    foreach: {f: "in/*.txt"}\n    run: "cat {inputs.t} > o"\n'
                   '    inputs: {t: "in/{each.f}.txt"}\n'
                   '  all:\n    deps: {parts: "each@*"}\n    run: "echo [{deps.parts}] > o"\n')
    (project.root / "in").mkdir()
    assert states(project.run("-n", "--json", expect=0)) == {"all": "stale"}
    project.run(expect=0)
    assert project.read("work/all-1/o") == "[]\n"


def test_a_cluster_build_submits_each_instance_as_a_batch_job(project, tmp_path):
    project.recipe('jobs:\n  part:\n    foreach: {n: [1, 2]}\n    run: "echo {each.n} > p"\n'
                   '  total:\n    deps: {ps: "part@*"}\n    run: "cat {deps.ps}/p > t"\n')
    out = tmp_path / "batch"
    project.run("emit", "--backend", "slurm", "--out", out, expect=0)
    assert sorted(p.name for p in out.glob("*.sh")) == ["part@1.sh", "part@2.sh", "submit.sh", "total.sh"]
    submit = (out / "submit.sh").read_text()
    assert submit.index("part@2.sh") < submit.index("total.sh")
    assert '"${exmake_ids[part@1]}"' in submit and '"${exmake_ids[part@2]}"' in submit


# -- bad input: exit 2, file:line:key, nothing written ---------------------------------------

BAD = {
    "unknown family": ('jobs:\n  a:\n    foreach: {x: nosuch}\n    run: "true"\n',
                       ":3: jobs.a.foreach.x: values must be a glob", "no family named 'nosuch'"),
    "a job, not a family": ('jobs:\n  b: {run: "true"}\n  a:\n    foreach: {x: b}\n    run: "true"\n',
                            ":4: jobs.a.foreach.x", "is a job, not a family"),
    "undeclared variable": ('jobs:\n  a:\n    foreach: {x: [1]}\n    run: "echo {each.y}"\n',
                            ":4: jobs.a.run", "{each.y} names no variable"),
    "each outside a family": ('jobs:\n  a:\n    run: "echo {each.y}"\n', ":3: jobs.a.run", "only known in a family"),
    "glob with two stars": ('jobs:\n  a:\n    foreach: {x: "d/*/*.txt"}\n    run: "true"\n',
                            ":3: jobs.a.foreach.x", "exactly one `*`"),
    "unsafe value": ('jobs:\n  a:\n    foreach: {x: [ok, "no way"]}\n    run: "true"\n',
                     ":3: jobs.a.foreach.x", "'no way' cannot be part of a job name"),
    "hidden value": ('jobs:\n  a:\n    foreach: {x: [.secret]}\n    run: "true"\n',
                     ":3: jobs.a.foreach.x", "cannot be part of a job name"),
    "duplicate value": ('jobs:\n  a:\n    foreach: {x: [one, one]}\n    run: "true"\n',
                        ":3: jobs.a.foreach.x", "given twice"),
    "duplicate names": ('jobs:\n  a:\n    foreach: {x: [1, "1"]}\n    run: "true"\n',
                        ":3: jobs.a.foreach.x", "given twice"),
    "no such instance": ('jobs:\n  a:\n    foreach: {x: [p, q]}\n    run: "true"\n'
                         '  b:\n    deps: {one: "a@z"}\n    run: "true"\n',
                         ":6: jobs.b.deps.one", "no job named 'a@z'"),
    "fan-in of no family": ('jobs:\n  b:\n    deps: {all: "nope@*"}\n    run: "true"\n',
                            ":3: jobs.b.deps.all", "no family named 'nope'"),
    "a family as a dependency": ('jobs:\n  a:\n    foreach: {x: [p]}\n    run: "true"\n'
                                 '  b:\n    deps: {one: a}\n    run: "true"\n',
                                 ":6: jobs.b.deps.one", "is a family"),
    "families in a cycle": ('jobs:\n  a:\n    foreach: {x: b}\n    run: "true"\n'
                            '  b:\n    foreach: {x: a}\n    run: "true"\n',
                            "jobs.a.foreach", "cycle"),
    "values of no kind": ('jobs:\n  a:\n    foreach: {x: 5}\n    run: "true"\n',
                          ":3: jobs.a.foreach.x", "values must be a glob with one `*`, a list"),
    "foreach not a mapping": ('jobs:\n  a:\n    foreach: [1, 2]\n    run: "true"\n',
                              ":3: jobs.a.foreach", "must be a mapping"),
    "missing lines file": ('jobs:\n  a:\n    foreach: {x: {lines: nope.txt}}\n    run: "true"\n',
                           ":3: jobs.a.foreach.x", "nope.txt"),
    "malformed each": ('jobs:\n  a:\n    foreach: {x: [1]}\n    run: "echo {each.}"\n',
                       ":4: jobs.a.run", "malformed placeholder"),
    "each in method": ('jobs:\n  a:\n    foreach: {x: [1]}\n    method: "{each.x}.py"\n',
                       ":4: jobs.a.method", "not filled in here"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_family_input_is_one_clear_error(project, case):
    recipe, where, problem = BAD[case]
    project.recipe(recipe)
    result = project.run(expect=2)
    assert where in result.err and problem in result.err, result
    assert len(result.err.strip().splitlines()) == 1, result
    assert not (project.root / "work").exists()


def test_watch_builds_a_new_instance_when_a_file_matches(project):
    from test_watch import Watching
    project.recipe('jobs:\n  up:\n    foreach: {f: "in/*.txt"}\n    inputs: {t: "in/{each.f}.txt"}\n'
                   '    run: "tr a-z A-Z < {inputs.t} > u"\n')
    project.write("in/a.txt", "a\n")
    watch = Watching(project)
    try:
        watch.wait_summaries(1)
        project.write("in/b.txt", "b\n")
        watch.wait_for(lambda: len(watch.summaries()) >= 2 and "1 built" in watch.summaries()[-1])
        assert project.read("work/up@b-LATEST/u") == "B\n"
    finally:
        watch.stop()


# -- found by reviewing families ------------------------------------------------------------

def test_the_fast_path_sees_a_glob_directory_that_did_not_exist(project):
    project.recipe('jobs:\n  m:\n    foreach: {s: "data/samples/*.txt"}\n    run: "echo {each.s} > o"\n'
                   '  all:\n    deps: {ms: "m@*"}\n    run: "echo {deps.ms} > list"\n')
    age(project.root)
    project.run(expect=0)
    assert FAST in project.run("-v", expect=0).out
    project.write("data/samples/A.txt", "a\n")
    age(project.root, 5)
    result = project.run("--json", expect=0)
    assert states(result) == {"m@A": "built", "all": "built"}


def test_a_star_that_is_a_directory_sees_what_appears_inside_each(project):
    project.recipe('jobs:\n  m:\n    foreach: {s: "data/*/reads.txt"}\n    inputs: {r: "data/{each.s}/reads.txt"}\n'
                   '    run: "cat {inputs.r} > o"\n')
    project.write("data/A/reads.txt", "a\n")
    (project.root / "data/B").mkdir()
    age(project.root)
    project.run(expect=0)
    assert FAST in project.run("-v", expect=0).out
    project.write("data/B/reads.txt", "b\n")
    age(project.root, 5)
    assert states(project.run("--json", expect=0)) == {"m@A": "reused", "m@B": "built"}


def test_watch_unpublishes_and_sees_a_family_directory_made_later(project):
    from test_watch import Watching
    project.recipe('jobs:\n  m:\n    foreach: {s: "in/*.txt"}\n    inputs: {t: "in/{each.s}.txt"}\n'
                   '    run: "cat {inputs.t} > o"\n    publish: {"out/{each.s}": o}\n'
                   '  q:\n    foreach: {z: "extra/*.txt"}\n    run: "echo {each.z} > o"\n')
    project.write("in/A.txt", "a\n")
    project.write("in/B.txt", "b\n")
    watch = Watching(project)
    try:
        watch.wait_summaries(1)
        os.unlink(project.root / "in/B.txt")
        watch.wait_for(lambda: not (project.root / "results/out/B").exists())
        assert project.read("results/out/A") == "a\n"
        project.write("extra/Z.txt", "z\n")
        watch.wait_for(lambda: (project.root / "work/q@Z-LATEST/o").exists())
    finally:
        watch.stop()


def test_a_change_in_a_family_directory_cancels_no_running_job(project):
    from test_watch import Watching
    project.recipe('jobs:\n  slow:\n    run: "sleep 3; echo done > o"\n'
                   '  m:\n    foreach: {s: "data/*.txt"}\n    run: "echo {each.s} > o"\n')
    project.write("data/a.txt", "a\n")
    project.write("slow-input-none", "")
    watch = Watching(project)
    try:
        watch.wait_for(lambda: (project.root / "work/.exmake/building").exists()
                       and any((project.root / "work/.exmake/building").iterdir()))
        project.write("data/notes.md", "not a match\n")
        watch.wait_summaries(1)
        assert "cancel" not in watch.log.read_text()
        assert project.job_dirs("slow") == ["slow-1"]
    finally:
        watch.stop()


def test_two_recipes_sharing_a_results_directory_keep_each_others_results(project):
    project.recipe('jobs:\n  a: {run: "echo a > a.txt", publish: {a.txt: a.txt}}\n')
    project.write("other.yaml", 'jobs:\n  b: {run: "echo b > b.txt", publish: {b.txt: b.txt}}\n')
    project.run(expect=0)
    result = project.run("-f", "other.yaml", expect=0)
    assert "unpublished" not in result.out
    assert project.read("results/a.txt") == "a\n" and project.read("results/b.txt") == "b\n"


def test_status_and_why_take_a_family_and_show_an_empty_one(project):
    project.recipe('jobs:\n  m:\n    foreach: {s: [a, b]}\n    run: "echo {each.s} > o"\n'
                   '  none:\n    foreach: {s: "nothing/*.txt"}\n    run: "true"\n')
    project.run(expect=0)
    assert "m@{a,b}" in project.run("status", "m", expect=0).out
    assert "empty        none@{}" in project.run("status", expect=0).out
    assert "m@a: fresh" in project.run("why", "m", expect=0).out
    assert "none@{}" in project.run("-n", expect=0).out
    assert "none@{}" in project.run("-n", "none", expect=0).out


@pytest.mark.parametrize("case,recipe,problem", [
    ("name too long", 'jobs:\n  m:\n    foreach: {s: ["' + "v" * 230 + '"]}\n    run: "true"\n', "at most 200"),
    ("product too large", 'jobs:\n  m:\n    foreach: {a: [' + ", ".join(map(str, range(1000))) + '], b: ['
     + ", ".join(map(str, range(1000))) + ']}\n    run: "true"\n', "1,000,000 combinations"),
    ("value like an option", 'jobs:\n  m:\n    foreach: {s: ["-n"]}\n    run: "cat {each.s}.txt"\n',
     "not starting with . or -"),
])
def test_more_bad_family_input(project, case, recipe, problem):
    project.recipe(recipe)
    result = project.run(expect=2)
    assert problem in result.err and "Traceback" not in result.err, result
    assert not (project.root / "work").exists()


def test_a_sample_sheet_too_large_is_refused_not_cut_short(project):
    project.recipe('jobs:\n  qc:\n    foreach: {s: {lines: big.txt}}\n    run: "true"\n')
    with open(project.root / "big.txt", "w") as f:
        f.write("A\n" + "#" * (65 << 20) + "\nB\n")
    result = project.run(expect=2)
    assert "larger than 64 MiB" in result.err
