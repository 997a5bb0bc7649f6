"""A Markdown table with one row per book, from the `stats` jobs of recipes/books.

usage: books_report.py STATS_JOB_DIR... > report.md
Each directory holds words.txt (`count word` lines, most frequent first) and
verses.txt (`book verses`).
"""

import os
import sys


def book_row(directory):
    with open(os.path.join(directory, "verses.txt")) as f:
        book, verses = f.read().split()
    with open(os.path.join(directory, "words.txt")) as f:
        counts = [line.split() for line in f if line.strip()]
    words = sum(int(n) for n, _ in counts)
    top = ", ".join(word for _, word in counts[:3])
    return book, int(verses), words, len(counts), top


def main(directories):
    rows = [book_row(d) for d in directories]
    print(f"# {len(rows)} books of the King James Bible\n")
    print("| book | verses | words | distinct | most frequent |\n|---|---:|---:|---:|---|")
    for book, verses, words, distinct, top in rows:
        print(f"| {book} | {verses:,} | {words:,} | {distinct:,} | {top} |")
    print(f"\n{sum(r[2] for r in rows):,} words in all.")


if __name__ == "__main__":
    main(sys.argv[1:])
