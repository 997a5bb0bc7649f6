"""A JUnit XML report of a build, for CI servers that display test results.

One <testsuite> for the recipe, one <testcase> per job: a failed job holds a
<failure> with its reason and the tail of its stderr, a skipped or
cancelled one a <skipped>. The file is written atomically.
"""

import os
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timezone

from exmake.fs import atomic


def junit_xml(recipe_path, outcomes, elapsed):
    """The report as bytes."""
    failures = sum(o.state == "failed" for o in outcomes.values())
    skipped = sum(o.state in ("skipped", "cancelled", "submitted") for o in outcomes.values())
    counts = {"tests": str(len(outcomes)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped), "time": f"{elapsed:.3f}"}
    suites = ElementTree.Element("testsuites", name="exmake", **counts)
    suite = ElementTree.SubElement(suites, "testsuite", name=recipe_path, **counts,
                                   timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                                   hostname=os.uname().nodename)
    classname = "exmake." + os.path.basename(os.path.dirname(recipe_path) or ".")
    for name, outcome in outcomes.items():
        case = ElementTree.SubElement(suite, "testcase", classname=classname, name=name,
                                      time=f"{outcome.duration:.3f}")
        if outcome.state == "failed":
            reason = outcome.detail.get("reason") or "; ".join(outcome.reasons) or "failed"
            failure = ElementTree.SubElement(case, "failure", message=reason, type="JobFailed")
            failure.text = "\n".join(outcome.detail.get("stderr_tail") or [])
        elif outcome.state in ("skipped", "cancelled", "submitted"):
            ElementTree.SubElement(case, "skipped", message="; ".join(outcome.reasons) or outcome.state)
        out = ElementTree.SubElement(case, "system-out")
        out.text = f"{outcome.state} {outcome.jobid or ''} {outcome.path or ''}".strip()
    ElementTree.indent(suites)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="utf-8") + b"\n"


def write_junit(path, recipe_path, outcomes, elapsed):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    atomic.write_bytes(os.path.abspath(path), junit_xml(recipe_path, outcomes, elapsed))
