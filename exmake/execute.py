"""A job's command as an argv: placeholders expanded, direct exec or bash.

Commands with no shell syntax are executed directly, as make does, saving a
shell start per job; the rest run under `bash -e -o pipefail -c`. Words
split where bash splits them (space and tab) and nowhere else: a no-break
space is part of a word to bash, so it is to exmake. Starting, watching and
stopping the processes is exmake.process.
"""

import re

from exmake.recipe import PLACEHOLDER_RE
from exmake.view import expand

# Any of these means the shell must interpret the command.
SHELL_SYNTAX_RE = re.compile(r"[|&;<>()$`\\\"'*?\[\]#~{}\n!%]|^\s*\w+=")
# Words only a shell understands: a command starting with one goes to bash
# even without shell syntax (`exit 4`, `cd x`, `set -x`).
SHELL_WORDS = frozenset("""
    . : alias bg bind break builtin caller case cd command compgen complete continue declare dirs
    disown do done elif else enable esac eval exec exit export false fc fg fi for function getopts
    hash help history if jobs let local logout mapfile popd printf pushd pwd read readarray readonly
    return select set shift shopt source suspend test then time times trap true type typeset ulimit
    umask unalias unset until wait while [ [[ { }
""".split())
# The characters bash separates words with; str.split() would also split on
# no-break spaces and other Unicode whitespace, which bash keeps in the word.
SHELL_BLANKS_RE = re.compile(r"[ \t]+")


def command_argv(template, values):
    """argv for a command: direct exec when it has no shell syntax, else bash."""
    words = [w for w in SHELL_BLANKS_RE.split(template) if w]
    bare = PLACEHOLDER_RE.sub("", template)  # placeholders are ours, not shell syntax
    # A placeholder of several values inside a longer word (`--in={inputs.g}`)
    # means what a shell would make of it, which is what `-n` prints: bash.
    split_inside = any(isinstance(values[m.group(0)], list) and not PLACEHOLDER_RE.fullmatch(word)
                       for word in words for m in PLACEHOLDER_RE.finditer(word))
    if words and words[0] not in SHELL_WORDS and not SHELL_SYNTAX_RE.search(bare) and not split_inside:
        argv = []
        for word in words:
            if PLACEHOLDER_RE.fullmatch(word) and isinstance(values[word], list):
                argv.extend(str(v) for v in values[word])  # a glob input: one argument per file
            else:
                argv.append(expand(word, values, quote=False))
        return argv
    return ["bash", "-e", "-o", "pipefail", "-c", expand(template, values)]
