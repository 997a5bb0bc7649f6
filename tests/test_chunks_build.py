"""Chunked job scripts end to end: `chunks:` reuses per-chunk results, and is always right.

Every build here is the real `python -m exmake`; chunk counts come from
the job's post.json.
"""

import json
import os
import pickle
import random
import signal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, Project, pid_alive, running_dirs, wait_for

RECIPE = """\
slices: 2
jobs:
  upper:
    method: upper.py
    inputs: {text: data/log.txt}
    chunks: text
    chunk_size: 16K
    options: {mark: ""}
"""

# Order- and boundary-sensitive on purpose: the output is every line in input
# order, and the chunk count; a chunk in the wrong place, a line lost or read
# twice, or another chunking than a from-scratch run's all show.
SCRIPT = """\
import os

options = {"mark": ""}


def analysis_chunk(lines, options):
    return os.getpid(), [options["mark"] + line.upper() for line in lines]


def synthesis(chunk_res, job):
    with job.open("upper.txt", "w") as f:
        for _, lines in chunk_res:
            f.writelines(lines)
    job.json_save({"chunks": len(chunk_res), "pids": sorted({pid for pid, _ in chunk_res})}, "meta.json")
"""

WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()


def log_lines(count, seed):
    rng = random.Random(seed)
    return [f"{seed}:{n} {' '.join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))}\n" for n in range(count)]


def make(project, lines, script=SCRIPT, recipe=RECIPE):
    project.recipe(recipe)
    project.write("upper.py", script)
    project.write("data/log.txt", "".join(lines), dedent=False)


def build(project, *args):
    project.run("-q", *args, expect=0)
    post = json.loads((project.root / "work/upper-LATEST/post.json").read_text())
    return post["chunks"], project.read("work/upper-LATEST/upper.txt"), \
        json.loads(project.read("work/upper-LATEST/meta.json"))


def from_scratch(tmp_path, lines, name="scratch"):
    """The same job over the same text in a fresh project: no cache, no hints."""
    fresh = Project(tmp_path / name)
    make(fresh, lines)
    return build(fresh)


def test_a_first_build_computes_every_chunk_in_parallel_slices(project):
    lines = log_lines(6000, 1)
    make(project, lines)
    chunks, text, meta = build(project)
    assert chunks["total"] > 10 and chunks["computed"] == chunks["total"] and chunks["reused"] == 0
    assert text == "".join(lines).upper()
    assert len(meta["pids"]) == 2  # the job's two slices each computed chunks
    post = json.loads((project.root / "work/upper-LATEST/post.json").read_text())
    assert len(post["timings"]["slices"]) == 2


def test_appending_one_percent_recomputes_only_the_last_chunks(project, tmp_path):
    lines = log_lines(20000, 1)
    make(project, lines)
    first, _, _ = build(project)
    grown = lines + log_lines(200, 2)  # 1%
    project.write("data/log.txt", "".join(grown), dedent=False)
    chunks, text, meta = build(project)
    assert chunks["computed"] <= 3, chunks
    assert chunks["reused"] >= first["total"] - 1
    assert chunks["computed_bytes"] < chunks["bytes"] * 0.1
    scratch = from_scratch(tmp_path, grown)
    assert (text, meta["chunks"]) == (scratch[1], scratch[2]["chunks"])
    assert text == "".join(grown).upper()


def test_an_insert_in_the_middle_recomputes_only_the_chunks_around_it(project, tmp_path):
    lines = log_lines(20000, 1)
    make(project, lines)
    first, _, _ = build(project)
    edited = lines[:10000] + log_lines(40, 3) + lines[10000:]
    project.write("data/log.txt", "".join(edited), dedent=False)
    chunks, text, meta = build(project)
    assert 1 <= chunks["computed"] <= 4, chunks
    assert chunks["reused"] >= first["total"] - 3
    scratch = from_scratch(tmp_path, edited)
    assert (text, meta["chunks"]) == (scratch[1], scratch[2]["chunks"])


def test_editing_the_script_reuses_no_chunk(project):
    make(project, log_lines(4000, 1))
    build(project)
    project.write("upper.py", SCRIPT.replace("line.upper()", "line.upper().rstrip() + '\\n'"))
    chunks, _, _ = build(project)
    assert chunks["reused"] == 0 and chunks["computed"] == chunks["total"]


def test_a_comment_is_no_edit(project):
    make(project, log_lines(4000, 1))
    build(project)
    project.write("upper.py", "# a comment changes no code\n" + SCRIPT)
    out = project.run("--json", expect=0).out
    assert json.loads(out)["jobs"]["upper"]["state"] == "reused"


def test_changing_an_option_reuses_no_chunk(project):
    lines = log_lines(4000, 1)
    make(project, lines)
    build(project)
    project.recipe(RECIPE.replace('mark: ""', 'mark: "> "'))
    chunks, text, _ = build(project)
    assert chunks["reused"] == 0 and chunks["computed"] == chunks["total"]
    assert text == "".join("> " + line.upper() for line in lines)


def test_another_input_changing_reuses_no_chunk(project):
    make(project, log_lines(4000, 1), recipe=RECIPE.replace("{text: data/log.txt}",
                                                            "{text: data/log.txt, other: data/other.txt}"))
    project.write("data/other.txt", "one\n")
    build(project)
    project.write("data/other.txt", "two\n")
    chunks, _, _ = build(project)
    assert chunks["reused"] == 0


def test_a_second_job_with_the_same_code_and_options_shares_chunks(project):
    recipe = RECIPE + RECIPE.split("jobs:\n")[1].replace("upper:", "again:")
    make(project, log_lines(4000, 1), recipe=recipe)
    project.run("-q", expect=0)
    posts = [json.loads((project.root / f"work/{name}-LATEST/post.json").read_text())["chunks"]
             for name in ("upper", "again")]
    assert sorted(p["reused"] for p in posts) == [0, posts[0]["total"]]


def test_show_says_how_many_chunks_were_reused(project):
    lines = log_lines(8000, 1)
    make(project, lines)
    build(project)
    project.write("data/log.txt", "".join(lines + log_lines(20, 5)), dedent=False)
    chunks, _, _ = build(project)
    out = project.run("show", "upper", expect=0).out
    assert f"chunks   {chunks['total']} of input text (target 16.0 KiB): {chunks['reused']} reused, " \
           f"{chunks['computed']} computed" in out
    document = json.loads(project.run("show", "upper", "--json", expect=0).out)
    assert document["post"]["chunks"] == chunks


def test_verify_recomputes_every_chunk_and_stores_none(project):
    make(project, log_lines(4000, 1))
    build(project)
    cache = project.root / "work/.exmake/chunks"
    before = sorted(str(p) for p in cache.rglob("*") if p.is_file())
    out = project.run("verify", "upper").out
    # Only meta.json differs: it names the processes that computed the chunks,
    # which a re-run that reused cached chunks would not have changed.
    assert "differs  meta.json" in out and "upper.txt" not in out, out
    assert sorted(str(p) for p in cache.rglob("*") if p.is_file()) == before


def test_gc_cuts_the_chunk_cache_to_its_cap(project):
    make(project, log_lines(8000, 1))
    build(project)
    out = project.run("gc", env={"EXMAKE_CHUNK_CACHE_MAX": "100K"}, expect=0).out
    assert "chunk cache entries" in out
    entries = [p for p in (project.root / "work/.exmake/chunks").glob("??/*")]
    assert sum(p.stat().st_size for p in entries) <= 100 * 1024
    chunks, _, _ = build(project, "-B")  # what went is computed again, the rest reused
    assert chunks["computed"] > 0 and chunks["reused"] > 0


def test_a_job_keeps_the_cache_under_its_cap(project):
    make(project, log_lines(8000, 1))
    project.run("-q", env={"EXMAKE_CHUNK_CACHE_MAX": "100K"}, expect=0)
    entries = [p for p in (project.root / "work/.exmake/chunks").glob("??/*")]
    assert entries and sum(p.stat().st_size for p in entries) <= 100 * 1024


def test_a_killed_build_leaves_a_cache_the_next_build_gets_right(project, tmp_path):
    """SIGKILL exmake and its job while slices store chunk results: the next
    build's result is a from-scratch run's."""
    lines = log_lines(20000, 1)
    make(project, lines, script=SCRIPT.replace("    return os.getpid()",
                                               "    import time\n    time.sleep(0.05)\n    return os.getpid()"))
    proc = project.popen("-q", start_new_session=True)
    cache = project.root / "work/.exmake/chunks"
    wait_for(lambda: len(list(cache.glob("??/*"))) >= 5, timeout=60)
    os.killpg(proc.pid, signal.SIGKILL)  # exmake; its job runs in a session of its own:
    job = [pid for directory in running_dirs(project.root) for pid in _processes_in(directory)]
    assert job
    for pid in job:  # the job's runner and slices, as a power cut would
        os.kill(pid, signal.SIGKILL)
    proc.wait()
    for pid in [proc.pid, *job]:
        wait_for(lambda: not pid_alive(pid))
    chunks, text, meta = build(project)
    assert 0 < chunks["reused"] < chunks["total"]
    assert text == "".join(lines).upper()


def _processes_in(directory):
    """The processes whose working directory is `directory` (a running job's)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(directory):
                    found.append(int(entry))
            except OSError:
                pass
    return found


edit = st.tuples(st.sampled_from(["append", "insert", "delete", "rewrite"]), st.floats(0, 1),
                 st.integers(1, 400), st.integers(0, 1000))


def apply(lines, plan):
    lines = list(lines)
    for kind, where, count, seed in plan:
        at = int(where * len(lines))
        if kind == "append":
            lines += log_lines(count, seed)
        elif kind == "insert":
            lines[at:at] = log_lines(count, seed)
        elif kind == "delete":
            del lines[at:at + count]
        else:
            lines[at:at + count] = log_lines(count, seed)
    return lines


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=st.lists(st.lists(edit, min_size=1, max_size=3), min_size=1, max_size=2))
def test_the_result_equals_a_from_scratch_run_whatever_the_edit(tmp_path_factory, plans):
    """Random appends, inserts, deletes and rewrites, one build after each
    round: every result is what a fresh workdir makes of the same text."""
    base = tmp_path_factory.mktemp("prop")
    project = Project(base / "proj")
    lines = log_lines(5000, 1)
    make(project, lines)
    build(project)
    for n, plan in enumerate(plans):
        lines = apply(lines, plan)
        project.write("data/log.txt", "".join(lines), dedent=False)
        chunks, text, meta = build(project)
        scratch_chunks, scratch_text, scratch_meta = from_scratch(base, lines, f"scratch{n}")
        assert text == scratch_text == "".join(lines).upper()
        assert meta["chunks"] == scratch_meta["chunks"] == chunks["total"] == scratch_chunks["total"]


def test_the_readme_chunk_example_runs(project):
    section = (REPO / "README.md").read_text().split("## Chunks:", 1)[1].split("\n## ", 1)[0]
    recipe = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    script = section.split("```python\n", 1)[1].split("```", 1)[0]
    project.recipe(recipe)
    project.write("count.py", script, dedent=False)
    project.write("logs/big.log", "".join(log_lines(3000, 1)), dedent=False)
    project.run(expect=0)
    post = json.loads((project.root / "work/count-1/post.json").read_text())
    assert post["chunks"]["total"] == 1 and post["chunks"]["size"] == 4 << 20  # a small log: one chunk
    counts = pickle.loads((project.root / "work/count-1/result.pickle").read_bytes())
    assert sum(counts.values()) == sum(len(line.split()) for line in log_lines(3000, 1))


def test_a_cap_of_zero_keeps_nothing(project):
    make(project, log_lines(4000, 1))
    project.run("-q", env={"EXMAKE_CHUNK_CACHE_MAX": "0"}, expect=0)
    assert not list((project.root / "work/.exmake").glob("chunks/??/*"))
    chunks, _, _ = build(project, "-B")
    assert chunks["reused"] == 0 and chunks["computed"] == chunks["total"]


def test_a_failing_chunk_fails_the_job_and_names_the_chunk(project):
    make(project, log_lines(4000, 1), script=SCRIPT.replace(
        "    return os.getpid()", "    if any(line.startswith('1:2000 ') for line in lines):\n"
        "        raise ValueError('bad line')\n    return os.getpid()"))
    result = project.run(expect=1)
    assert "raised ValueError: bad line" in result.out
    assert "in the chunk of bytes " in result.out and "of inputs/text/log.txt" in result.out
    assert project.run("-q", expect=1).code == 1  # never reused


def test_the_progress_bar_counts_chunks(project):
    make(project, log_lines(8000, 1), script=SCRIPT.replace(
        "    return os.getpid()", "    import time\n    time.sleep(0.1)\n    return os.getpid()"))
    out = project.run("--progress", "always", expect=0).out
    total = json.loads((project.root / "work/upper-1/post.json").read_text())["chunks"]["total"]
    assert f"/{total} chunks |" in out, out


def test_chunks_are_keyed_on_what_prepare_returned(project):
    """prepare may read what no key covers (here the slice count); a chunk
    computed with another prepare_res is not reused."""
    make(project, log_lines(4000, 1), script=SCRIPT.replace(
        "def analysis_chunk(lines, options):", "def prepare(slices):\n    return f'{slices}: '\n\n\n"
        "def analysis_chunk(lines, options, prepare_res):").replace(
        'options["mark"] + line.upper()', 'prepare_res + line.upper()'))
    _, text, _ = build(project)
    assert text.startswith("2: ")
    project.recipe(RECIPE.replace("slices: 2", "slices: 3"))
    chunks, text, _ = build(project)
    assert chunks["reused"] == 0 and text.startswith("3: ")
    project.recipe(RECIPE)
    project.run("-q", "-B", expect=0)  # the same prepare_res again: every chunk reused
    assert json.loads((project.root / "work/upper-LATEST/post.json").read_text())["chunks"]["computed"] == 0


def test_a_torn_entry_is_computed_again(project):
    """An entry that fails its check when it is loaded (as a power cut could
    leave one) is computed again, and the result is still right."""
    lines = log_lines(4000, 1)
    make(project, lines)
    build(project)
    entry = sorted((project.root / "work/.exmake/chunks").glob("??/*"))[0]
    entry.write_bytes(entry.read_bytes()[:-7])
    chunks, text, _ = build(project, "-B")
    assert chunks["computed"] == 1 and chunks["reused"] == chunks["total"] - 1
    assert text == "".join(lines).upper()


# -- review of issue 16 ---------------------------------------------------------

PLAIN = RECIPE.replace('    options: {mark: ""}\n', "")  # for job scripts that take no option

def test_equal_chunks_each_get_their_own_result_object(project, tmp_path):
    """A synthesis that adds into chunk_res[0] counted a repeated chunk twice:
    equal chunks shared one object (a plain analysis gives each slice its own)."""
    block = "x aa bb cc\n" * 4000  # periodic text: content-defined cuts repeat, and so do the chunks
    script = """\
from collections import Counter


def analysis_chunk(lines):
    return Counter(w for line in lines for w in line.split())


def synthesis(chunk_res, job):
    for c in chunk_res:  # touch each result once: a shared object is touched more than once
        c["__visits__"] += 1
    job.json_save({"chunks": len(chunk_res), "visits": [c["__visits__"] for c in chunk_res],
                   "distinct": len({c_key for c_key in map(lambda c: tuple(sorted(c.items())), chunk_res)})},
                  "meta.json")
"""
    make(project, [], script=script, recipe=PLAIN.replace("chunk_size: 16K", "chunk_size: 4K"))
    project.write("data/log.txt", block, dedent=False)
    project.run("-q", expect=0)
    meta = json.loads(project.read("work/upper-LATEST/meta.json"))
    assert meta["chunks"] > meta["distinct"]  # the text did give equal chunks
    assert meta["visits"] == [1] * meta["chunks"]


def test_the_chunked_inputs_path_is_in_the_key(project):
    """analysis_chunk may see inputs.X: renaming the file reused results that named it."""
    script = """\
import os


def analysis_chunk(lines, inputs):
    return [os.path.basename(inputs.text) + ": " + line for line in lines if "ERROR" in line]


def synthesis(chunk_res, job):
    with job.open("errors.txt", "w") as f:
        for lines in chunk_res:
            f.writelines(lines)
"""
    make(project, ["ok\n", "ERROR bad\n"] * 50, script=script, recipe=PLAIN.replace("data/log.txt", "data/a.log"))
    os.rename(project.root / "data/log.txt", project.root / "data/a.log")
    project.run("-q", expect=0)
    assert project.read("work/upper-LATEST/errors.txt").startswith("a.log: ERROR")
    os.rename(project.root / "data/a.log", project.root / "data/b.log")
    project.recipe(PLAIN.replace("data/log.txt", "data/b.log"))
    project.run("-q", expect=0)
    assert project.read("work/upper-LATEST/errors.txt").startswith("b.log: ERROR")


def test_an_input_rewritten_while_chunks_compute_stores_nothing_under_the_old_bytes(project, tmp_path):
    """The job failed ("changed while the job ran"), but the chunks it computed
    from the new bytes were stored under the old bytes' keys, and came back
    when the file was reverted."""
    lines = log_lines(3000, 7)
    script = """\
import os

options = {"mark": ""}
flag = os.path.join(os.environ["REWRITE_DIR"], "rewrite-once")


def analysis_chunk(lines, options, inputs):
    if os.path.exists(flag):  # the first chunk computed rewrites the input in place, same size
        os.unlink(flag)
        with open(inputs.text, "r+") as f:
            text = f.read()
            f.seek(0)
            f.write(text.replace("lorem", "LOREM"))
    return os.getpid(), [options["mark"] + line for line in lines]  # as read: a rewrite shows


def synthesis(chunk_res, job):
    with job.open("upper.txt", "w") as f:
        for _, lines in chunk_res:
            f.writelines(lines)
    job.json_save({"chunks": len(chunk_res), "pids": []}, "meta.json")
"""
    make(project, lines, script=script, recipe=RECIPE.replace("slices: 2", "slices: 1"))
    env = {"REWRITE_DIR": str(project.root)}
    (project.root / "rewrite-once").write_text("")
    project.run("-q", expect=1, env=env)   # the input changed while the job ran
    project.write("data/log.txt", "".join(lines), dedent=False)  # back to what was chunked
    project.run("-q", expect=0, env=env)
    assert project.read("work/upper-LATEST/upper.txt") == "".join(lines)
