#!/usr/bin/env python3
"""Reads ctest's JUnit report and fails when an entry counted as passed did not truly pass:
it printed a gtest skip ("[  SKIPPED ]") or ran no test at all ("0 tests from 0 test suites").
ctest decides pass/skip from exit codes and regular expressions; this catches the entries those
let through. Usage: check-test-report.py REPORT.xml"""
import re
import sys
import xml.etree.ElementTree as ET

SKIP = re.compile(r"\[  SKIPPED \]")
NONE_RAN = re.compile(r"\[==========\] 0 tests from 0 test suites ran|Running 0 tests")


def main(path):
    root = ET.parse(path).getroot()
    bad, passed, skipped, failed = [], 0, 0, 0
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
            bad.append(f"{case.get('name')}: counted as passed but printed a skip")
        elif NONE_RAN.search(out):
            bad.append(f"{case.get('name')}: counted as passed but ran no test")
    print(f"check-test-report: {passed} passed, {skipped} skipped, {failed} failed (from {path})")
    for b in bad:
        print(f"check-test-report: {b}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
