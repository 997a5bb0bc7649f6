"""Write a short Markdown report from the example pipeline's tables.

usage: kjv_report.py COUNTS VERSES LONGEST > report.md
"""

import sys


def read_pairs(path):
    with open(path) as f:
        return [line.split(None, 1) for line in f if line.strip()]


def main(counts_path, verses_path, longest_path):
    counts = [(int(n), word.strip()) for n, word in read_pairs(counts_path)]
    total = sum(n for n, _ in counts)
    print("# Word statistics: seven books of the King James Bible\n")
    print(f"{total:,} words, {len(counts):,} distinct.\n")
    print("| book | verses |\n|---|---:|")
    for book, n in read_pairs(verses_path):
        print(f"| {book} | {int(n):,} |")
    print("\n## Most frequent words\n")
    print("| rank | word | count | share |\n|---:|---|---:|---:|")
    for rank, (n, word) in enumerate(counts[:15], 1):
        print(f"| {rank} | {word} | {n:,} | {100 * n / total:.2f}% |")
    print("\n## Longest verse of each book\n")
    with open(longest_path) as f:
        for line in f:
            print(f"- {line.strip()}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
