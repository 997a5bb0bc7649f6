"""Print a shell completion script: `exmake completion bash|zsh|fish`.

    source <(exmake completion bash)              # or save it as ~/.local/share/bash-completion/completions/exmake
    source <(exmake completion zsh)               # after compinit; or save it as _exmake in your $fpath
    exmake completion fish > ~/.config/fish/completions/exmake.fish

It completes commands, each command's flags (and the values of those that
take files, directories or a fixed set of words), and job and family
names from the recipe in the current directory (or the one `-f`/`-C` name
on the line being completed).

A TAB must not wait for a recipe load: commands and flags are written into
the script when it is made, so completing them runs nothing; names come
from `exmake completion --names`, which scans the recipe's text for the
keys under `jobs:` and lists the workdir's `NAME@VALUE-LATEST` links for
the instances of families already built. It loads no YAML, expands no
inputs and reads no job script (tests/test_completion.py checks which
modules it imports). Regenerate the script after upgrading exmake.
"""

import argparse
import os
import re
import stat

from exmake import __version__
from exmake.errors import UsageError
from exmake.fs.jobdir import JOB_NAME_PATTERN

SHELLS = ("bash", "zsh", "fish")
SCAN_BYTES = 16 * 1024 * 1024   # as much of the recipe as exmake itself would read
JOBS_RE = re.compile(r"^jobs[ \t]*:[ \t]*(?:#.*)?$")
KEY_RE = re.compile(r"""^([ \t]+)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2[ \t]*:(?:[ \t]|$)""")
FOREACH_RE = re.compile(r"""^(["']?)foreach\1[ \t]*:""")
INLINE_FOREACH_RE = re.compile(r"""[{,][ \t]*(["']?)foreach\1[ \t]*:""")
WORKDIR_RE = re.compile(r"""^workdir:[ \t]*(["']?)([^"'#\n]+?)\1[ \t]*(?:#.*)?$""", re.M)
# A built instance's name must be one exmake could have made: a file name in the
# workdir (a cloned repository's `fam@$(touch PWNED)-LATEST`) is untrusted text.
INSTANCE_RE = re.compile(rf"{JOB_NAME_PATTERN}")
# Values that a flag takes which are not files: the words to offer.
VALUE_WORDS = {"backend": ("local", "slurm", "torque", "auto")}


def add_arguments(parser):
    parser.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to print the script for")
    parser.add_argument("--names", action="store_true", help=argparse.SUPPRESS)  # what the scripts call


def main(args):
    if args.names:
        for name in recipe_names(args.file):
            print(name)
        return 0
    if not args.shell:
        raise UsageError(f"completion: name a shell: {', '.join(SHELLS)}")
    spec = command_spec(args.command_words, args.make_parser, args.command_help)
    print(render(args.shell, spec), end="")
    return 0


# -- names, fast ---------------------------------------------------------------

def recipe_names(recipe_path):
    """The recipe's job and family names, in recipe order, then the built instances
    of its families (`NAME@VALUE`, from the workdir's -LATEST links). Never fails:
    a recipe that cannot be read completes nothing."""
    try:
        # As the recipe loader does (exmake.yamlsource): a FIFO or a device would
        # make open() or read() wait forever, and a TAB must never hang.
        if not stat.S_ISREG(os.stat(recipe_path).st_mode):
            return []
        fd = os.open(recipe_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced between stat and open
                return []
            text = f.read(SCAN_BYTES).decode("utf-8", "replace")
    except OSError:
        return []
    names, families = scan_jobs(text)
    match = WORKDIR_RE.search(text)
    workdir = os.path.join(os.path.dirname(os.path.abspath(recipe_path)), match.group(2) if match else "work")
    return names + built_instances(workdir, families)


def scan_jobs(text):
    """([job and family names], {family names}) from the keys one level under a
    block-style `jobs:`; a flow-style `jobs: {...}` gives nothing rather than
    a YAML load. A family is a job with a `foreach:` key of its own."""
    names, families = [], set()
    lines = iter(text.splitlines())
    if not any(JOBS_RE.match(line) for line in lines):
        return names, families
    indent = child = None   # the indent of job names, and of the current job's keys
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace():
            break  # the next top-level key: `jobs:` is over
        depth = line[:len(line) - len(line.lstrip())]
        key = KEY_RE.match(line)
        if key and (indent is None or depth == indent):
            indent, child = depth, None
            names.append(key.group(3))
            if INLINE_FOREACH_RE.search(line, key.end()):  # `name: {foreach: ..., run: ...}`
                families.add(key.group(3))
        elif names and len(depth) > len(indent):
            child = child or depth
            if depth == child and FOREACH_RE.match(stripped):
                families.add(names[-1])
    return names, families


def built_instances(workdir, families):
    """`NAME@VALUE` for each `NAME@VALUE-LATEST` link of a family in `workdir`."""
    if not families:
        return []
    try:
        entries = os.listdir(workdir)
    except OSError:
        return []
    found = (e[:-len("-LATEST")] for e in entries if e.endswith("-LATEST") and "@" in e)
    return sorted(name for name in found if INSTANCE_RE.fullmatch(name) and name.split("@", 1)[0] in families)


# -- what the scripts know ------------------------------------------------------

def command_spec(command_words, make_parser, command_help):
    """{command: {"help", "options", "values": {option: kind}, "positional": kind}} for
    every command; a kind is "file", "dir", "jobs", "jobs+files" or a tuple of words."""
    spec = {}
    for command in command_words:
        parser, _ = make_parser(command)
        entry = {"help": command_help[command], "options": [], "values": {},
                 "positional": None}
        for action in parser._actions:  # argparse keeps no public list of them
            if action.option_strings:
                entry["options"] += [o for o in action.option_strings if o.startswith("--") or len(o) == 2]
                if action.nargs != 0:
                    kind = _value_kind(action)
                    entry["values"].update((option, kind) for option in action.option_strings)
            elif action.help != argparse.SUPPRESS and entry["positional"] is None:
                entry["positional"] = _positional_kind(action)
        spec[command] = entry
    return spec


def _value_kind(action):
    if action.choices:
        return tuple(action.choices)
    if action.dest in VALUE_WORDS:
        return VALUE_WORDS[action.dest]
    return {"FILE": "file", "DIR": "dir"}.get(action.metavar)


def _positional_kind(action):
    if action.choices:
        return tuple(action.choices)
    metavar = action.metavar or ""
    if "TARGET" in metavar or "JOB" in metavar:
        return "jobs+files" if "PATH" in metavar else "jobs"
    return None


def _words(items):
    return " ".join(items)


# -- bash and zsh ----------------------------------------------------------------

# What the bash and zsh functions share: which command the line is in (the first
# bare word that is not a flag's value), the -f/-C words to pass on, and which
# kind of word completes here. @WORDS@ is the shell's array of the line's words.
BASH_ZSH_CORE = r"""    for (( i = @FIRST@; i < @CWORD@; i++ )); do
        word=${@WORDS@[i]}
        case $word in
            -f|--file|-C|--directory) where+=("$word" "@DEQUOTED@"); (( i++ )) ;;
            @VALUE_OPTIONS@) (( i++ )) ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then
                   case $word in @COMMANDS_PATTERN@) cmd=$word ;; *) cmd=build ;; esac
               fi ;;
        esac
    done
    case "${cmd:-build} $prev" in
@VALUE_CASES@
    esac
    if [[ -z $kind && $cur == -* ]]; then
        case ${cmd:-build} in
@OPTION_CASES@
        esac
        return 0
    fi
    if [[ -z $kind ]]; then
        case ${cmd:-build} in
@POSITIONAL_CASES@
        esac
    fi
"""

# -- bash ----------------------------------------------------------------------

BASH = r"""# exmake completion for bash (from `exmake completion bash`, exmake @VERSION@).
# Load it with `source <(exmake completion bash)` in ~/.bashrc, or save it as
# ~/.local/share/bash-completion/completions/exmake.
# The word as typed, one level of quoting taken off (my\ dir, "my dir", 'my dir'):
# bash gives the -f/-C words as typed. No eval: nothing in them is run.
_exmake_dequote() {
    local in=$1 out="" c q="" j
    [[ $in == "~" || $in == "~/"* ]] && in=$HOME${in:1}
    for (( j = 0; j < ${#in}; j++ )); do
        c=${in:j:1}
        if [[ $q == "'" ]]; then
            if [[ $c == "'" ]]; then q=""; else out+=$c; fi
        elif [[ $c == '\' ]]; then
            (( j++ )); c=${in:j:1}
            [[ $q == '"' && $c != ['"\$`'] ]] && out+='\'
            out+=$c
        elif [[ $c == "'" && -z $q ]]; then q="'"
        elif [[ $c == '"' ]]; then if [[ -n $q ]]; then q=""; else q='"'; fi
        else out+=$c
        fi
    done
    REPLY=$out
}
_exmake() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev="" cmd="" word i kind="" REPLY
    local -a where=()
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
@CORE@    local IFS=$'\n'   # names and file names are one a line
    case $kind in
        file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
        dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
        jobs|jobs+files)
            local names
            names=$("${COMP_WORDS[0]}" "${where[@]}" completion --names 2>/dev/null)
            [[ -z $cmd ]] && names+=$'\n'"@COMMANDS_LINES@"
            # Not compgen -W: it expands $(...) in its words, and names come
            # from file names. A literal prefix match of each line instead.
            while IFS= read -r word; do
                [[ -n $word && $word == "$cur"* ]] && COMPREPLY+=("$word")
            done <<< "$names"
            if [[ $kind == jobs+files ]]; then
                compopt -o filenames 2>/dev/null
                COMPREPLY+=($(compgen -f -- "$cur"))
            fi ;;
        words:*) IFS=$' \n'; COMPREPLY=($(compgen -W "${kind#words:}" -- "$cur")) ;;
    esac
    return 0
}
complete -F _exmake exmake
"""


# -- zsh -----------------------------------------------------------------------

ZSH = r"""#compdef exmake
# exmake completion for zsh (from `exmake completion zsh`, exmake @VERSION@).
# Load it with `source <(exmake completion zsh)` in ~/.zshrc after compinit,
# or save it as a file named _exmake in a directory of your $fpath.
_exmake() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]} cmd="" word i kind=""
    local -a where names
@CORE@    case $kind in
        file) _files ;;
        dir) _files -/ ;;
        jobs|jobs+files)
            names=(${(f)"$(${words[1]} "${where[@]}" completion --names 2>/dev/null)"})
            [[ -z $cmd ]] && names+=(@COMMANDS_WORDS@)
            compadd -a names
            [[ $kind == jobs+files ]] && _files ;;
        words:*) compadd -- ${=kind#words:} ;;
    esac
    return 0
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _exmake "$@"
else
    compdef _exmake exmake
fi
"""


# -- fish ----------------------------------------------------------------------

FISH = r"""# exmake completion for fish (from `exmake completion fish`, exmake @VERSION@).
# Save it: exmake completion fish > ~/.config/fish/completions/exmake.fish
function __exmake_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd ""
    set -l where
    set -l skip 0
    for i in (seq 2 (count $words))
        set -l word $words[$i]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case -f --file -C --directory
                set -l next (math $i + 1)
                if test $next -le (count $words)
                    set where $where $word $words[$next]
                end
                set skip 1
            case @VALUE_OPTIONS@
                set skip 1
            case '-*'
            case '*'
                if test -z "$cmd"
                    switch $word
                        case @COMMANDS_PATTERN@
                            set cmd $word
                        case '*'
                            set cmd build
                    end
                end
        end
    end
    set -l command $cmd
    test -z "$command"; and set command build
    set -l prev ""
    test (count $words) -ge 2; and set prev $words[-1]
    test $skip = 0; and set prev ""
    set -l kind ""
    switch "$command $prev"
@VALUE_CASES@
    end
    if test -z "$kind"; and string match -q -- '-*' "$cur"
        switch $command
@OPTION_CASES@
        end
        return
    end
    if test -z "$kind"
        switch $command
@POSITIONAL_CASES@
        end
    end
    switch $kind
        case file
            __fish_complete_path $cur
        case dir
            __fish_complete_directories $cur
        case jobs jobs+files
            $words[1] $where completion --names 2>/dev/null
            if test -z "$cmd"
@COMMAND_LINES@
            end
            test $kind = jobs+files; and __fish_complete_path $cur
        case 'words:*'
            string split ' ' -- (string replace 'words:' '' -- $kind)
    end
end
complete -c exmake -f -a '(__exmake_complete)'
"""


def _fish_quote(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- filling the templates in -----------------------------------------------------

# Per shell: its template, how it joins alternative words in a pattern, and the
# lines that say, per command, which kind a flag's value is, which flags there
# are, and which kind the positional arguments are.
SHELL_FORMS = {
    "bash": (BASH, "|", {
        "value": '        "{command} {option}") kind={kind} ;;',
        "options": '            {command}) COMPREPLY=($(compgen -W "{options}" -- "$cur")) ;;',
        "positional": "            {command}) kind={kind} ;;"}),
    "zsh": (ZSH, "|", {
        "value": '        "{command} {option}") kind={kind} ;;',
        "options": "            {command}) compadd -- {options} ;;",
        "positional": "            {command}) kind={kind} ;;"}),
    "fish": (FISH, " ", {
        "value": "        case '{command} {option}'\n            set kind {kind}",
        "options": "            case {command}\n                printf '%s\\n' {options}",
        "positional": "            case {command}\n                set kind {kind}"}),
}


# bash and zsh: the first word after `exmake`, the index of the word completed, the array.
CORE_WORDS = {"bash": ("1", "COMP_CWORD", "COMP_WORDS"), "zsh": ("2", "CURRENT", "words")}
# A -f/-C value with one level of quoting taken off (both shells give the word as typed).
DEQUOTED = {"bash": '$(_exmake_dequote "${COMP_WORDS[i+1]}"; printf %s "$REPLY")',
            "zsh": "${${(Q)words[i+1]}/#\\~/$HOME}"}


def render(shell, spec):
    """The completion script for `shell`, with `spec` (see command_spec) written in."""
    template, alternatives, forms = SHELL_FORMS[shell]
    if shell in CORE_WORDS:
        first, cword, words = CORE_WORDS[shell]
        template = template.replace("@CORE@", BASH_ZSH_CORE.replace("@FIRST@", first).replace("@CWORD@", cword)
                                    .replace("@WORDS@", words)
                                    .replace("@DEQUOTED@", DEQUOTED[shell]))

    def kind_text(kind):
        return f"'words:{_words(kind)}'" if isinstance(kind, tuple) else kind or "none"
    commands = [c for c in spec if c != "build"]
    value_options = sorted({o for entry in spec.values() for o in entry["values"]} -
                           {"-f", "--file", "-C", "--directory"})
    values = [forms["value"].format(command=command, option=option, kind=kind_text(kind))
              for command, entry in spec.items() for option, kind in entry["values"].items()]
    options = [forms["options"].format(command=command, options=_words(entry["options"]))
               for command, entry in spec.items()]
    positionals = [forms["positional"].format(command=command, kind=kind_text(entry["positional"]))
                   for command, entry in spec.items() if entry["positional"]]
    fish_commands = [f"                printf '%s\\t%s\\n' {c} {_fish_quote(spec[c]['help'])}" for c in commands]
    for marker, text in (("@VERSION@", __version__), ("@VALUE_OPTIONS@", alternatives.join(value_options)),
                         ("@COMMANDS_PATTERN@", alternatives.join(commands)),
                         ("@COMMANDS_WORDS@", _words(spec)),
                         ("@COMMANDS_LINES@", "\n".join(spec)), ("@VALUE_CASES@", "\n".join(values)),
                         ("@OPTION_CASES@", "\n".join(options)), ("@POSITIONAL_CASES@", "\n".join(positionals)),
                         ("@COMMAND_LINES@", "\n".join(fish_commands))):
        template = template.replace(marker, text)
    return template
