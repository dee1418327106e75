"""junit.xml of one SC-1 run: one testcase per invariant, so CI lists what held and what broke."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.checker import Invariant, Validity, Verdict
from harness.history import History


def render_junit(history: History, verdict: Verdict) -> str:
    """One testsuite `SC-1`, one testcase per invariant; a failure element per violated one. An
    INCONCLUSIVE run is an error of the terminal case: no verdict, so no CI may read it as green."""
    inconclusive = verdict.valid is Validity.INCONCLUSIVE
    suite = ET.Element("testsuite", name="SC-1", tests=str(len(Invariant)),
                       failures=str(len({v.invariant for v in verdict.violations})),
                       errors=str(int(inconclusive)), time=f"{history.duration_s:.3f}")
    for invariant in Invariant:
        case = ET.SubElement(suite, "testcase", classname="SC-1",
                             name=f"{invariant.value}. {invariant.name.lower()}: {invariant.title}")
        broken = [v for v in verdict.violations if v.invariant is invariant]
        if broken:
            failure = ET.SubElement(case, "failure", type=broken[0].name.value,
                                    message=broken[0].message)
            failure.text = "\n".join(f"{v.name.value} at op {v.index}: {v.message}" for v in broken)
        elif inconclusive and invariant is Invariant.TERMINAL:
            ET.SubElement(case, "error", type="INCONCLUSIVE", message=verdict.reason or "no terminal state")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


