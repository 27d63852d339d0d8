#!/usr/bin/python3
"""Checks that the charts of an HTML report (mtfsim report --html) rendered
(run by tests/html_report_test.sh).

Usage:
  html_report_check.py dom REPORT.html DOM.html CHART...
      DOM.html is Chromium's --dump-dom of REPORT.html after its scripts ran.
      Every CHART (a data-chart id) must be in the report, be drawn without
      error as an SVG, and hold at least one drawn data mark per row of its
      data (each chart draws every row as a point, a bar or a tick), none at
      a NaN position. Prints the page height and each chart's box as
      "HEIGHT id:x,y,w,h ..." for the pixel check.
  html_report_check.py pixels SHOT.png BOXES...
      SHOT.png is a screenshot of the page at its full height; BOXES the
      "id:x,y,w,h" the dom check printed. Every box must hold coloured pixels:
      the data marks (axes, grids and text are grey or black).
  html_report_check.py offline REPORT.html
      The report must load nothing: no element with a src or href, no CSS
      @import or url().

Exits 1 naming every chart that failed.
"""
import json
import re
import sys
from html.parser import HTMLParser


class Dom(HTMLParser):
    """Per chart element: its attributes, and the data marks inside its SVG
    (the children of Vega's <g class="mark-... role-mark"> groups, but groups
    of groups, which hold panels rather than marks)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.charts = {}
        self.body = {}
        self.stack = []  # (tag, chart id or None, is a data-mark group)
        self.nan = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        chart = self.stack[-1][1] if self.stack else None
        if tag == "body":
            self.body = a
        if "data-chart" in a:
            chart = a["data-chart"]
            self.charts[chart] = {"attrs": a, "marks": 0, "svg": 0}
            self.nan[chart] = 0
        in_marks = bool(self.stack) and self.stack[-1][2]
        if chart is not None:
            if tag == "svg":
                self.charts[chart]["svg"] += 1
            if in_marks:
                self.charts[chart]["marks"] += 1
                if any("NaN" in (a.get(k) or "") for k in ("d", "transform", "x", "y", "x1", "x2", "y1", "y2")):
                    self.nan[chart] += 1
        cls = a.get("class") or ""
        is_marks = tag == "g" and "role-mark" in cls.split() and "mark-group" not in cls.split()
        if tag not in ("path", "line", "rect", "circle", "text", "img", "br", "meta", "input"):
            self.stack.append((tag, chart, is_marks))
        elif tag == "text":  # text marks have a body; keep the nesting
            self.stack.append((tag, chart, False))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return


def data_rows(spec):
    rows = len(spec.get("data", {}).get("values", []))
    return rows


def check_dom(report, dom_file, wanted):
    page = open(report, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="mtf-specs">(.*?)</script>', page, re.S)
    if not m:
        print(f"FAILED: {report} has no chart specs (script#mtf-specs)")
        return 1
    specs = json.loads(m.group(1))
    d = Dom()
    d.feed(open(dom_file, encoding="utf-8").read())
    failed = []
    if d.body.get("data-charts-done") != str(len(specs)):
        failed.append(f"the page's script did not finish drawing (data-charts-done={d.body.get('data-charts-done')!r}, "
                      f"{len(specs)} charts): a script error, or Chromium stopped before it ended")
    boxes = []
    for chart in wanted:
        c = d.charts.get(chart)
        if chart not in specs or c is None:
            failed.append(f"{chart}: not in the report (charts: {', '.join(specs)})")
            continue
        a = c["attrs"]
        rows = data_rows(specs[chart])
        if "data-error" in a:
            failed.append(f"{chart}: the page says it could not be drawn: {a['data-error']}")
        elif a.get("data-rendered") != "yes" or c["svg"] == 0:
            failed.append(f"{chart}: no SVG drawn (data-rendered={a.get('data-rendered')!r})")
        elif c["marks"] < rows or rows == 0:
            failed.append(f"{chart}: {c['marks']} data marks drawn for {rows} rows of data")
        elif d.nan[chart]:
            failed.append(f"{chart}: {d.nan[chart]} data marks at a NaN position")
        else:
            print(f"ok: {chart}: {c['marks']} data marks for {rows} rows", file=sys.stderr)
        boxes.append(f"{chart}:{a.get('data-box', '')}")
    for f in failed:
        print("FAILED: " + f)
    print(d.body.get("data-page-height", "0"), *boxes)
    return 1 if failed else 0


def check_pixels(shot, boxes):
    from PIL import Image  # Debian: python3-pil

    im = Image.open(shot).convert("RGB")
    failed = []
    for b in boxes:
        chart, _, box = b.partition(":")
        try:
            x, y, w, h = (int(v) for v in box.split(","))
        except ValueError:
            failed.append(f"{chart}: no box recorded ({box!r})")
            continue
        if w < 50 or h < 30 or x + w > im.width or y + h > im.height:
            failed.append(f"{chart}: box {x},{y},{w},{h} is empty or outside the {im.width}x{im.height} screenshot")
            continue
        region = im.crop((x, y, x + w, y + h))
        coloured = sum(1 for r, g, bl in region.getdata() if max(r, g, bl) - min(r, g, bl) > 60)
        if coloured < 50:
            failed.append(f"{chart}: {coloured} coloured pixels in its box {x},{y},{w},{h}: no data drawn")
        else:
            print(f"ok: {chart}: {coloured} coloured pixels", file=sys.stderr)
    for f in failed:
        print("FAILED: " + f)
    return 1 if failed else 0


class Loads(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href", "srcset", "data") or (k == "rel" and v == "stylesheet"):
                self.found.append(f"<{tag} {k}={v!r}>")


def check_offline(report):
    page = open(report, encoding="utf-8").read()
    p = Loads()
    p.feed(page)
    style = "".join(re.findall(r"<style>(.*?)</style>", page, re.S))
    found = p.found + [f"CSS {s}" for s in re.findall(r"@import|url\(", style)]
    for f in found:
        print(f"FAILED: the report loads something: {f}")
    return 1 if found else 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "dom":
        sys.exit(check_dom(sys.argv[2], sys.argv[3], sys.argv[4:]))
    if len(sys.argv) >= 3 and sys.argv[1] == "pixels":
        sys.exit(check_pixels(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) == 3 and sys.argv[1] == "offline":
        sys.exit(check_offline(sys.argv[2]))
    print(__doc__)
    sys.exit(2)
