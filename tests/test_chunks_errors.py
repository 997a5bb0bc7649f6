"""Bad `chunks:` and `chunk_size:`: one error naming file, line and key, exit 2, nothing written."""

import pytest

CHUNKED = "def analysis_chunk(lines):\n    return len(lines)\n\ndef synthesis(chunk_res):\n    return sum(chunk_res)\n"
PLAIN = "def analysis(sliceno):\n    return 1\n"

CASES = [
    ("shell job without slices", "jobs:\n  a:\n    run: wc -l {inputs.t}\n    inputs: {t: d/log.txt}\n    chunks: t\n",
     CHUNKED, 5, "jobs.a.chunks: chunks are for job scripts (`method:` with analysis_chunk); this is a shell job"),
    ("shell job with slices", "jobs:\n  a:\n    run: wc -l {inputs.t}\n    slices: 2\n    inputs: {t: d/log.txt}\n"
     "    chunks: t\n", CHUNKED, 6, "a shell job's slices cannot be chunked"),
    ("a directory", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d}\n    chunks: t\n",
     CHUNKED, 5, "jobs.a.chunks: input 't' is a directory; chunks are cut from one file"),
    ("a glob", "jobs:\n  a:\n    method: s.py\n    inputs: {t: 'd/*.txt'}\n    chunks: t\n",
     CHUNKED, 5, "jobs.a.chunks: input 't' is a glob"),
    ("no analysis_chunk", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n",
     PLAIN, 5, "jobs.a.chunks: s.py defines no analysis_chunk(lines, ...)"),
    ("names no input", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: text\n",
     CHUNKED, 5, "jobs.a.chunks: names no input: this job's inputs are t"),
    ("not a name", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: [t]\n",
     CHUNKED, 5, "jobs.a.chunks: names no input"),
    ("bad size", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n    chunk_size: huge\n",
     CHUNKED, 6, "jobs.a.chunk_size: 'huge' is not a size"),
    ("size too small", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n    chunk_size: 100\n",
     CHUNKED, 6, "jobs.a.chunk_size: 100 must be from 1K to 1G"),
    ("size without chunks", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunk_size: 4M\n",
     PLAIN, 5, "jobs.a.chunk_size: only a job with `chunks:` has chunks"),
    ("analysis_chunk without chunks", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n",
     CHUNKED, 3, "jobs.a.chunks: s.py defines analysis_chunk(), which runs only in a job with `chunks: INPUT`"),
    ("both analyses", "jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n",
     CHUNKED + PLAIN, 5, "s.py defines analysis() too"),
]


@pytest.mark.parametrize("name, recipe, script, line, message", CASES, ids=[c[0] for c in CASES])
def test_bad_chunks(project, name, recipe, script, line, message):
    project.recipe(recipe)
    project.write("s.py", script)
    project.write("d/log.txt", "a\nb\n")
    result = project.run(expect=2)
    assert f"Exmakefile:{line}: " in result.err, result
    assert message in result.err, result
    assert len(result.err.strip().splitlines()) == 1, result
    assert not (project.root / "work").exists()


@pytest.mark.parametrize("parameter", ["job", "sliceno", "slices", "analysis_res"])
def test_analysis_chunk_may_not_see_what_its_key_does_not_cover(project, parameter):
    project.recipe("jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n")
    project.write("s.py", f"def analysis_chunk(lines, {parameter}):\n    return 1\n")
    project.write("d/log.txt", "a\n")
    result = project.run(expect=2)
    assert "s.py:1: analysis_chunk() asks for " + repr(parameter) in result.err, result
    assert "its result is cached and reused by other jobs" in result.err
    assert not (project.root / "work").exists()


def test_analysis_chunk_must_take_lines(project):
    project.recipe("jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n")
    project.write("s.py", "def analysis_chunk(options):\n    return 1\n")
    project.write("d/log.txt", "a\n")
    result = project.run(expect=2)
    assert "s.py:1: analysis_chunk() must take a `lines` parameter" in result.err, result


def test_a_bad_cache_cap_stops_the_build_before_it_starts(project):
    project.recipe("jobs:\n  a:\n    method: s.py\n    inputs: {t: d/log.txt}\n    chunks: t\n")
    project.write("s.py", CHUNKED)
    project.write("d/log.txt", "a\n")
    result = project.run(env={"EXMAKE_CHUNK_CACHE_MAX": "lots"}, expect=2)
    assert "EXMAKE_CHUNK_CACHE_MAX=lots: not a size" in result.err
    assert not (project.root / "work").exists()
