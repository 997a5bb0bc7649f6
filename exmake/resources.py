"""Resource requests: the keys a job or profile may set, and their units.

One table (`RESOURCE_KEYS`) says what each key means locally, to Slurm and to
Torque; `normalise` checks a mapping against it and returns canonical values
(memory in MiB, time in seconds) so that `4G` and `4096M` are the same
request.
"""

import re

# key: (type, meaning, slurm form, torque form)
RESOURCE_KEYS = {
    "profile": ("name", "a named resource set from `profiles:`", "-", "-"),
    "cores": ("int", "CPU cores per job (default 1; sliced jobs: slices); local: held from -j",
              "--cpus-per-task=N", "-l nodes=1:ppn=N"),
    "mem": ("size", "memory per job (local: held from --mem; what the job uses may not exceed it)",
            "--mem=NM", "-l mem=Nmb"),
    "time": ("duration", "wall-clock limit (local: the job is killed past it)",
             "--time=D-HH:MM:SS", "-l walltime=HH:MM:SS"),
    "partition": ("str", "partition / queue", "--partition=P", "-q P"),
    "account": ("str", "account to charge", "--account=A", "-A A"),
    "qos": ("str", "quality of service", "--qos=Q", "-l qos=Q"),
    "gpus": ("int", "GPUs per job", "--gpus=N", "-l nodes=1:ppn=P:gpus=N"),
    "constraint": ("str", "node features", "--constraint=C", "-l nodes=1:ppn=P:C"),
    "extra": ("list", "scheduler arguments passed verbatim", "as given", "as given"),
}

# Upper bounds, so that no request overflows a 64-bit rlimit, a scheduler's
# field or a timer downstream; each is far past any real machine or queue.
MAX_MEM_MIB = 1024 ** 3          # 1024 TiB
MAX_TIME_S = 366 * 24 * 3600     # a year: clusters grant days or weeks, never more
MAX_COUNT = 1_000_000            # cores or GPUs of one job

_SIZE_UNITS_MIB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
# Digit runs are bounded ({1,15}): a longer number is refused by the regex, not
# by float() turning it into inf or int() refusing it past 4,300 digits.
_SIZE_RE = re.compile(r"^\s*([0-9]{1,15}(?:\.[0-9]{1,15})?)\s*([KMGT])(?:i?B)?\s*$", re.IGNORECASE)
_N = r"([0-9]{1,15})"
_UNIT_TIME_RE = re.compile(rf"^(?:{_N}d)?(?:{_N}h)?(?:{_N}m)?(?:{_N}s)?$")
# Slurm's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_CLOCK_RE = re.compile(rf"^{_N}:{_N}(?::{_N})?$")
_DAY_CLOCK_RE = re.compile(rf"^{_N}-{_N}(?::{_N})?(?::{_N})?$")


def _shown(value, limit=40):
    """`value` as an error message shows it: a 5,000-digit number is not read in full."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 5]}...{text[-2:]} ({len(text):,} characters)"


def parse_mem_mib(value):
    """`4G`, `4096M`, `512MB` -> MiB as int; a bare number means MiB."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 4G or 512M")
    if isinstance(value, int):
        mib = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError(f"{_shown(value)} is not a size; write it like 4G, 4096M or 512MB")
        mib = float(match.group(1)) * _SIZE_UNITS_MIB[match.group(2).upper()]
    if mib > MAX_MEM_MIB:
        raise ValueError(f"{_shown(value)} is more than {MAX_MEM_MIB // 1024 ** 2}T; no machine has that much memory")
    mib = int(-(-mib // 1))  # round up: asking for less than written would surprise
    if mib <= 0:
        raise ValueError(f"{_shown(value)} must be more than zero")
    return mib


def parse_time_s(value):
    """`90m`, `1h30m`, `45s`, `2d`, `01:30:00`, `1-12`, `1-00:00:00` -> seconds; a bare number means minutes.

    Clock forms read as Slurm reads them: M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90m or 01:30:00")
    if isinstance(value, int):
        seconds = value * 60
    else:
        text = str(value).strip().lower()
        seconds = _unit_time(text)
        if seconds is None:
            seconds = _clock_time(text)
        if seconds is None:
            raise ValueError(f"{_shown(value)} is not a duration; write it like 90m, 1h30m or 01:30:00")
    if seconds <= 0:
        raise ValueError(f"{_shown(value)} must be more than zero")
    if seconds > MAX_TIME_S:
        raise ValueError(f"{_shown(value)} is more than {MAX_TIME_S // 86400} days")
    return seconds


def _unit_time(text):
    match = _UNIT_TIME_RE.match(text)
    if not match or not any(match.groups()):
        return None
    d, h, m, s = (int(g or 0) for g in match.groups())
    return ((d * 24 + h) * 60 + m) * 60 + s


def _clock_time(text):
    match = _DAY_CLOCK_RE.match(text)
    if match:
        d, h, m, s = (int(g or 0) for g in match.groups())
    else:
        match = _CLOCK_RE.match(text)
        if not match:
            return None
        a, b, c = match.groups()
        d, h, m, s = (0, 0, int(a), int(b)) if c is None else (0, int(a), int(b), int(c))
        if c is None:
            return None if s >= 60 else m * 60 + s
    if h >= 24 and d or m >= 60 or s >= 60:
        return None
    return ((d * 24 + h) * 60 + m) * 60 + s


def _positive_int(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{_shown(value)} must be a whole number of at least 1")
    if value > MAX_COUNT:
        raise ValueError(f"{_shown(value)} is more than {MAX_COUNT:,}")
    return value


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _text(value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_shown(value)} must be a non-empty string")
    # A newline would end a batch script's directive line and start a command.
    if _CONTROL_RE.search(value):
        raise ValueError(f"{_shown(value)} holds a control character (a newline?)")
    return value


def _string_list(value):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a string or a list of strings")
    return [_text(v) for v in value]


_NORMALISERS = {
    "cores": _positive_int, "gpus": _positive_int, "mem": parse_mem_mib, "time": parse_time_s,
    "partition": _text, "account": _text, "qos": _text, "constraint": _text,
    "extra": _string_list, "profile": _text,
}


def normalise(key, value):
    """Return the canonical value for one resource key; ValueError names the problem."""
    return _NORMALISERS[key](value)


# The environment variables that tell a job's libraries how many threads to
# start: OpenMP, MKL and OpenBLAS read theirs, a script may read EXMAKE_CORES.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "EXMAKE_CORES")


def requested_cores(resources, slices):
    """The cores a job asks for: `cores:`, else its slices (a sliced job), else 1."""
    return resources.get("cores") or slices or 1


def thread_env(cores):
    """{variable: "N"} telling a process's libraries to start `cores` threads."""
    return {name: str(cores) for name in THREAD_ENV}


def format_mem(mib):
    """MiB as a person writes it: `300M`, `2G`, `1536M`; a fraction of a MiB rounds up."""
    mib = int(-(-mib // 1))
    return f"{mib // 1024}G" if mib >= 1024 and mib % 1024 == 0 else f"{mib}M"


def format_bytes(count):
    """Bytes as `912M` (whole MiB, rounded) or, from 10 GiB on, `12.3G`."""
    mib = count / (1024 * 1024)
    return f"{mib / 1024:.1f}G" if mib >= 10 * 1024 else f"{mib:.0f}M"


def format_time(seconds):
    """Seconds -> `D-HH:MM:SS` (Slurm) or `HH:MM:SS` when under a day."""
    d, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}-{h:02}:{m:02}:{s:02}" if d else f"{h:02}:{m:02}:{s:02}"
