"""`input_dir:` and --input-dir: inputs named, and keyed, relative to the data's directory.

Moving the data and pointing `input_dir:` (or --input-dir) at its new place
changes no key: every job is reused. New content at the new place is not.
"""

import json
import os
import shutil

RECIPE = """\
    input_dir: data
    jobs:
      words:
        run: "tr -s ' ' '\\n' < {inputs.text} > words.txt"
        inputs: {text: book.txt}
        outputs: [words.txt]
      shelf:
        run: "cat {inputs.books} > all.txt"
        inputs: {books: "shelf/*.txt"}
        outputs: [all.txt]
      count:
        run: "wc -l < {deps.words}/words.txt > n.txt"
        deps: {words: words}
        outputs: [n.txt]
"""


def make(project):
    project.recipe(RECIPE)
    project.write("data/book.txt", "a b c\n")
    project.write("data/shelf/one.txt", "one\n")
    project.write("data/shelf/two.txt", "two\n")


def states(result):
    return {name: job["state"] for name, job in json.loads(result.out)["jobs"].items()}


def test_keys_record_paths_relative_to_input_dir(project):
    make(project)
    project.run("--json", expect=0)
    setup = json.loads((project.root / "work/words-1/setup.json").read_text())
    assert [path for path, _ in setup["inputs"]["text"]] == ["book.txt"]
    shelf = json.loads((project.root / "work/shelf-1/setup.json").read_text())
    assert [path for path, _ in shelf["inputs"]["books"]] == ["shelf/one.txt", "shelf/two.txt"]
    assert project.read("work/shelf-1/all.txt") == "one\ntwo\n"


def test_data_moved_with_input_dir_option_reuses_everything(project, tmp_path):
    make(project)
    project.run(expect=0)
    before = project.job_dirs()
    moved = tmp_path / "elsewhere" / "data"
    moved.parent.mkdir()
    shutil.move(str(project.root / "data"), str(moved))
    result = project.run("--json", "--input-dir", moved, expect=0)
    assert states(result) == {"words": "reused", "shelf": "reused", "count": "reused"}
    assert project.job_dirs() == before


def test_data_moved_with_the_recipe_key_reuses_everything(project):
    make(project)
    project.run(expect=0)
    os.rename(project.root / "data", project.root / "moved")
    project.recipe(RECIPE.replace("input_dir: data", "input_dir: moved"))
    assert states(project.run("--json", expect=0)) == {"words": "reused", "shelf": "reused", "count": "reused"}


def test_moved_data_with_other_content_runs_again(project, tmp_path):
    make(project)
    project.run(expect=0)
    moved = tmp_path / "moved"
    shutil.copytree(project.root / "data", moved)
    (moved / "book.txt").write_text("a b c d\n")
    result = project.run("--json", "--input-dir", moved, expect=0)
    assert states(result) == {"words": "built", "shelf": "reused", "count": "built"}
    assert project.read("work/count-2/n.txt").strip() == "4"


def test_the_stable_view_points_into_the_input_dir(project):
    make(project)
    project.run(expect=0)
    assert os.path.realpath(project.root / "work/shelf-1/inputs/books") == str(project.root / "data/shelf")
    assert os.path.realpath(project.root / "work/words-1/inputs/text/book.txt") == str(project.root / "data/book.txt")


def test_input_dir_that_is_not_a_directory_is_one_error_and_writes_nothing(project):
    make(project)
    project.recipe(RECIPE.replace("input_dir: data", "input_dir: nowhere"))
    result = project.run(expect=2)
    assert "Exmakefile:1" in result.err and "input_dir" in result.err and "not a directory" in result.err
    assert not (project.root / "work").exists()


def test_an_input_dir_inside_the_workdir_is_refused(project):
    """Review of issue 17: it turned off the guard, and a job took its own output as input."""
    make(project)
    (project.root / "work").mkdir()
    result = project.run("--input-dir", "work", expect=2)
    assert "inside the workdir" in result.err
    project.recipe(RECIPE.replace("input_dir: data", "input_dir: work"))
    result = project.run(expect=2)
    assert "input_dir" in result.err and "inside the workdir" in result.err
    assert os.listdir(project.root / "work") == []


def test_input_dir_option_that_is_not_a_directory_is_a_usage_error(project):
    make(project)
    result = project.run("--input-dir", "nowhere", expect=2)
    assert "--input-dir nowhere: not a directory" in result.err
    assert not (project.root / "work").exists()


def test_inputs_missing_under_the_input_dir_name_the_key(project, tmp_path):
    make(project)
    (tmp_path / "empty").mkdir()
    result = project.run("--input-dir", tmp_path / "empty", expect=2)
    assert "jobs.words.inputs.text" in result.err and "book.txt" in result.err
    assert not (project.root / "work").exists()


def test_input_dir_option_skips_the_no_op_stamp(project, tmp_path):
    """The stamp records the recipe's own input files; a build with --input-dir
    read others, so it neither takes the fast path nor leaves a stamp that a
    plain build would take for its own."""
    make(project)
    project.run(expect=0)
    other = tmp_path / "other"
    shutil.copytree(project.root / "data", other)
    (other / "book.txt").write_text("x\n")
    project.run("--input-dir", other, expect=0)
    assert project.read("work/count-LATEST/n.txt").strip() == "1"
    assert states(project.run("--json", expect=0))["count"] == "reused"
    assert project.read("work/count-LATEST/n.txt").strip() == "3"


def test_a_family_glob_is_relative_to_the_input_dir_too(project, tmp_path):
    project.recipe("""\
        input_dir: data
        jobs:
          upper:
            foreach: {book: "books/*.txt"}
            run: "tr a-z A-Z < {inputs.text} > out.txt"
            inputs: {text: "books/{each.book}.txt"}
    """)
    project.write("data/books/a.txt", "a\n")
    project.write("data/books/b.txt", "b\n")
    assert set(states(project.run("--json", expect=0))) == {"upper@a", "upper@b"}
    moved = tmp_path / "moved"
    shutil.move(str(project.root / "data"), str(moved))
    assert states(project.run("--json", "--input-dir", moved, expect=0)) == {"upper@a": "reused", "upper@b": "reused"}
