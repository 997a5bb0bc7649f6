"""The shipped recipes, run as a user would run them from the README."""

import json
import shutil
import subprocess
import sys
from collections import Counter

from conftest import REPO, exmake_env


def exmake(cwd, *args, expect=0):
    proc = subprocess.run([sys.executable, "-m", "exmake", *args], cwd=cwd, capture_output=True,
                          text=True, env=exmake_env(None), timeout=300)
    assert proc.returncode == expect, (proc.stdout, proc.stderr)
    return proc


def states(proc):
    return {n: j["state"] for n, j in json.loads(proc.stdout)["jobs"].items()}


def test_example_pipeline(tmp_path):
    shutil.copy(REPO / "Exmakefile.example", tmp_path)
    shutil.copytree(REPO / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("work", "results"))
    first = exmake(tmp_path, "-f", "Exmakefile.example", "--json")
    assert set(states(first).values()) == {"built"}
    report = (tmp_path / "results/report.md").read_text()
    # The report's numbers agree with an independent count of the same text.
    words = Counter()
    for book in sorted((tmp_path / "recipes/data/kjv").glob("*.txt")):
        for line in book.read_text().splitlines():
            text = line.split(" ", 1)[1].lower()
            cleaned = "".join(c if c.isalpha() or c == "'" else " " for c in text)
            words.update(w for w in cleaned.split() if w.strip("'"))
    assert f"{sum(words.values()):,} words, {len(words):,} distinct." in report
    assert f"| 1 | the | {words['the']:,} |" in report
    assert set(states(exmake(tmp_path, "-f", "Exmakefile.example", "--json")).values()) == {"reused"}


def test_diamond(recipes_copy):
    where = recipes_copy / "diamond"
    assert set(states(exmake(where, "--json", "-j", "2")).values()) == {"built"}
    table = (where / "results/table.tsv").read_text().splitlines()
    verses = (recipes_copy / "data/kjv/ruth.txt").read_text().splitlines()
    assert len(table) == len(verses) + 1
    first_words = len(verses[0].split()) - 1  # less the reference
    assert table[0].split("\t")[:2] == ["1", str(first_words)]
    assert set(states(exmake(where, "--json")).values()) == {"reused"}
    why = exmake(where, "why", "table").stdout
    assert why.startswith("table: fresh") and "  words: fresh" in why and "(see above)" in why


def test_early_cutoff_recipe(recipes_copy):
    where = recipes_copy / "cutoff"
    exmake(where)
    selected = (where / "results/selected.txt").read_text().splitlines()
    assert [line.split()[0] for line in selected] == ["Jonah1:17", "Jonah2:10", "Jonah4:11"]
    favourites = where / "favourites.txt"
    favourites.write_text(favourites.read_text().replace("# Verses", "# The verses"))
    assert states(exmake(where, "--json")) == {"refs": "built", "select": "reused"}
    favourites.write_text(favourites.read_text() + "Jonah3:10\n")
    assert states(exmake(where, "--json")) == {"refs": "built", "select": "built"}
    assert len((where / "results/selected.txt").read_text().splitlines()) == 4


def test_sliced_word_count_equals_the_unix_pipeline(recipes_copy):
    where = recipes_copy / "wordcount"
    result = states(exmake(where, "--json"))
    assert result == {"count": "built", "top": "built", "lines": "built"}
    books = sorted(str(p) for p in (recipes_copy / "data/kjv").glob("*.txt"))
    unix = subprocess.run(
        ["bash", "-c", "cat \"$@\" | tr -cs A-Za-z '\\n' | tr A-Z a-z | grep . | sort | uniq -c", "-", *books],
        capture_output=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, check=True)
    assert (where / "results/counts.txt").read_bytes() == unix.stdout
    top = json.loads((where / "results/top.json").read_text())
    assert top[0] == ["the", 10906] and len(top) == 25
    lines = [int((where / f"work/lines-1/lines.{n}").read_text()) for n in range(3)]
    assert sum(lines) == len((recipes_copy / "data/kjv/psalms.txt").read_text().splitlines())
    # An edit to the local module the job script imports re-runs it; top is
    # then reused by early cutoff, since the counts do not change.
    textutil = where / "textutil.py"
    textutil.write_text(textutil.read_text().replace("return [w.lower()", "return [w.lower() for w in\n        []] or [w.lower()"))
    assert states(exmake(where, "--json")) == {"count": "built", "top": "reused", "lines": "reused"}


def test_books_one_job_per_book_and_a_fan_in_report(recipes_copy):
    where = recipes_copy / "books"
    kjv = recipes_copy / "data/kjv"
    first = states(exmake(where, "--json"))
    books = sorted(p.stem for p in kjv.glob("*.txt"))
    assert first == {**{f"stats@{b}": "built" for b in books}, "summary": "built"}
    report = (where / "results/report.md").read_text()
    for book in books:  # each row agrees with a count of the book's own text
        words = sum(len(_words(line.split(" ", 1)[1])) for line in (kjv / f"{book}.txt").read_text().splitlines())
        verses = len((kjv / f"{book}.txt").read_text().splitlines())
        row = next(line for line in report.splitlines() if line.startswith(f"| {book} |"))
        assert row.split(" | ")[1:3] == [f"{verses:,}", f"{words:,}"], (row, words)
    assert "stats@{" + ",".join(books) + "}" in exmake(where, "status").stdout
    # A new book: its job and the report run, nothing else.
    (kjv / "genesis1.txt").write_text("".join((kjv / "genesis.txt").read_text().splitlines(True)[:31]))
    grown = states(exmake(where, "--json"))
    assert {n for n, s in grown.items() if s == "built"} == {"stats@genesis1", "summary"}
    assert "| genesis1 | 31 |" in (where / "results/report.md").read_text()
    # A book taken away: its job leaves the plan, its table is unpublished.
    (kjv / "jonah.txt").unlink()
    shrunk = exmake(where, "--json")
    assert "stats@jonah" not in states(shrunk) and states(shrunk)["summary"] == "built"
    assert not (where / "results/books/jonah.txt").exists()
    assert "| jonah |" not in (where / "results/report.md").read_text()


def _words(text):
    """The recipe's tokenisation: runs of letters and apostrophes, not apostrophes alone."""
    cleaned = "".join(c if c.isalpha() or c == "'" else " " for c in text.lower())
    return [w for w in cleaned.split() if w.strip("'")]


def test_chunked_word_count_reuses_all_but_the_grown_chunk(recipes_copy):
    where = recipes_copy / "chunks"
    psalms = recipes_copy / "data/kjv/psalms.txt"

    def unix():
        return subprocess.run(["bash", "-c", "tr -cs A-Za-z '\\n' < \"$1\" | tr A-Z a-z | grep . | sort | uniq -c",
                               "-", str(psalms)], capture_output=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
                              check=True).stdout

    def chunks():
        return json.loads((where / "work/count-LATEST/post.json").read_text())["chunks"]

    exmake(where)
    first = chunks()
    assert first["computed"] == first["total"] > 20
    assert (where / "results/psalms-counts.txt").read_bytes() == unix()
    with open(psalms, "a") as f:
        f.write("Ps151:1 Praise ye the LORD, all ye chunks.\n")
    exmake(where)
    assert chunks()["computed"] == 1 and chunks()["reused"] == first["total"] - 1
    assert (where / "results/psalms-counts.txt").read_bytes() == unix()
