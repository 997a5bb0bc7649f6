"""The most frequent words, from the Counter the `count` job returned."""

options = {"n": 20}


def synthesis(deps, job, options):
    counts = deps.count.load()  # count's synthesis return value
    top = counts.most_common(options["n"])
    job.json_save([[word.decode(), n] for word, n in top], "top.json")
    return top
