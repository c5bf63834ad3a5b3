"""Seconds per notebook and per test file from the JUnit XML that `make test` writes (for docs/teaching.md)."""
import collections
import sys
import xml.etree.ElementTree as ET

path = sys.argv[1] if len(sys.argv) > 1 else "test-results.xml"
totals: dict[str, float] = collections.defaultdict(float)
for case in ET.parse(path).getroot().iter("testcase"):
    cls = case.get("classname", "")
    name = cls[:-6].replace(".", "/") + ".ipynb" if cls.endswith(".ipynb") else cls.replace(".", "/") + ".py"
    totals[name] += float(case.get("time", 0))
for name, seconds in sorted(totals.items()):
    print(f"{seconds:8.1f} s  {name}")
print(f"{sum(totals.values()):8.1f} s  total (summed over both workers)")
