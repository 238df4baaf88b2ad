#!/usr/bin/env python3
"""Reads ctest's JUnit report and fails when an entry counted as passed did not truly pass:
it printed a gtest skip ("[  SKIPPED ]") or ran no test at all ("0 tests from 0 test suites").
ctest decides pass/skip from exit codes and regular expressions; this catches the entries those
let through. One kind of skip is allowed inside a passing entry: a conformance case its device
reports unsupported (the op on that dtype has no kernel there), whose skip message begins
"unsupported: " with the reason. Those are counted and listed, never counted as passed cases.
Usage: check-test-report.py REPORT.xml"""
import re
import sys
import xml.etree.ElementTree as ET

SKIP = re.compile(r"\[  SKIPPED \]")
NONE_RAN = re.compile(r"\[==========\] 0 tests from 0 test suites ran|Running 0 tests")
# One gtest case from its start to its skip: the text between holds the skip's message.
CASE_SKIPPED = re.compile(r"^\[ RUN      \] (\S+)$(.*?)^\[  SKIPPED \] \1 \(", re.M | re.S)
SKIP_LINE = re.compile(r"^\[  SKIPPED \] (\S+)", re.M)
SKIP_SUMMARY = re.compile(r"^\[  SKIPPED \] \d+ tests?, listed below:$", re.M)


def unsupported_skips(out):
    """The cases of `out` skipped as unsupported (name -> reason), or None when some other skip
    is there too."""
    cases = {}
    for m in CASE_SKIPPED.finditer(out):
        reason = re.search(r"^unsupported: (.*)$", m.group(2), re.M)
        if not reason:
            return None
        cases[m.group(1)] = reason.group(1)
    for m in SKIP_LINE.finditer(SKIP_SUMMARY.sub("", out)):
        if m.group(1) not in cases:
            return None
    return cases


def main(path):
    root = ET.parse(path).getroot()
    bad, passed, skipped, failed, unsupported = [], 0, 0, 0, []
    for case in root.iter("testcase"):
        status = case.get("status", "")
        if case.find("skipped") is not None or status == "notrun":
            skipped += 1
            continue
        if case.find("failure") is not None or case.find("error") is not None or status == "fail":
            failed += 1
            continue
        passed += 1
        out = "".join(e.text or "" for e in case.iter("system-out"))
        if SKIP.search(out):
            cases = unsupported_skips(out)
            if cases is None:
                bad.append(f"{case.get('name')}: counted as passed but printed a skip")
            else:
                unsupported.append((case.get("name"), cases))
        elif NONE_RAN.search(out):
            bad.append(f"{case.get('name')}: counted as passed but ran no test")
    print(f"check-test-report: {passed} passed, {skipped} skipped, {failed} failed (from {path})")
    for name, cases in unsupported:
        reasons = sorted(set(cases.values()))
        print(f"check-test-report: {name}: {len(cases)} conformance cases unsupported on its device, "
              f"not counted as passed: {'; '.join(reasons[:6])}{' ...' if len(reasons) > 6 else ''}")
    for b in bad:
        print(f"check-test-report: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
