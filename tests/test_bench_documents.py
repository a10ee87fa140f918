"""The parts of bench/documents_vs_rapid.py that turn the reference's output into the
analysis dict: rapid_table's HTML to a grid (rowspan/colspan), cell boxes, and the line to
region assignment. Needs neither the reference packages nor a worker."""

from __future__ import annotations

from conftest import load_bench

bench = load_bench("documents_vs_rapid")

# rapid_table 0.3.0's output on d07_signal_notes (two header rows, merged headers, a row
# span), with a <b> inside a cell, an entity and extra whitespace added.
HTML = (
    "<html><body><table>"
    '<tr><td rowspan="2">Filter</td><td colspan="2">Latency (ms)</td>'
    '<td colspan="2"><b>Error</b> (dB)</td><td rowspan="2">Memory</td></tr>'
    "<tr><td>p50</td><td>p99</td><td>mean</td><td>max</td></tr>"
    "<tr><td>moving  average</td><td>4.80</td><td>5.84</td><td>-28.4</td><td>-14.4</td>"
    "<td>3 KB</td></tr>"
    '<tr><td rowspan="2">A&amp;B</td><td>6.53</td><td>6.09</td><td>-13.3</td><td>-46.6</td>'
    "<td></td></tr>"
    "<tr><td>3.90</td><td>4.43</td><td>-10.7</td><td>-24.5</td><td>56 KB</td></tr>"
    "</table></body></html>"
)


def grid(cells):
    return [(c.row, c.col, c.row_span, c.col_span, c.text) for c in cells]


def test_html_table_with_spans_becomes_the_exact_grid():
    rows, cols, cells = bench.parse_table_html(HTML)
    assert (rows, cols) == (5, 6)
    assert grid(cells) == [
        (0, 0, 2, 1, "Filter"),
        (0, 1, 1, 2, "Latency (ms)"),
        (0, 3, 1, 2, "Error (dB)"),
        (0, 5, 2, 1, "Memory"),
        (1, 1, 1, 1, "p50"),
        (1, 2, 1, 1, "p99"),
        (1, 3, 1, 1, "mean"),
        (1, 4, 1, 1, "max"),
        (2, 0, 1, 1, "moving average"),
        (2, 1, 1, 1, "4.80"),
        (2, 2, 1, 1, "5.84"),
        (2, 3, 1, 1, "-28.4"),
        (2, 4, 1, 1, "-14.4"),
        (2, 5, 1, 1, "3 KB"),
        (3, 0, 2, 1, "A&B"),
        (3, 1, 1, 1, "6.53"),
        (3, 2, 1, 1, "6.09"),
        (3, 3, 1, 1, "-13.3"),
        (3, 4, 1, 1, "-46.6"),
        (3, 5, 1, 1, ""),
        (4, 1, 1, 1, "3.90"),
        (4, 2, 1, 1, "4.43"),
        (4, 3, 1, 1, "-10.7"),
        (4, 4, 1, 1, "-24.5"),
        (4, 5, 1, 1, "56 KB"),
    ]
    # Every grid position is covered by exactly one cell.
    covered = [
        (c.row + dr, c.col + dc)
        for c in cells
        for dr in range(c.row_span)
        for dc in range(c.col_span)
    ]
    assert sorted(covered) == [(r, c) for r in range(rows) for c in range(cols)]


def test_row_span_past_the_last_row_is_cut_and_th_counts_as_a_cell():
    rows, cols, cells = bench.parse_table_html(
        '<table><tr><th>a</th><th rowspan="5">b</th></tr><tr><td colspan="x">c</td></tr></table>'
    )
    assert (rows, cols) == (2, 2)
    assert grid(cells) == [(0, 0, 1, 1, "a"), (0, 1, 2, 1, "b"), (1, 0, 1, 1, "c")]
    assert bench.parse_table_html("<table></table>") == (0, 0, [])


def test_table_grid_maps_cell_boxes_into_page_pixels():
    html = "<table><tr><td>x</td><td>y</td></tr></table>"
    polygons = [[0, 0, 10, 0, 10, 5, 0, 5], [10, 0, 20, 0, 20, 5, 10, 5]]
    t = bench.table_grid(html, polygons, (100.0, 50.0))
    assert (t["rows"], t["cols"]) == (1, 2)
    assert [c["box"] for c in t["cells"]] == [
        [100.0, 50.0, 110.0, 55.0],
        [110.0, 50.0, 120.0, 55.0],
    ]
    assert [c["text"] for c in t["cells"]] == ["x", "y"]
    # Boxes that do not pair up with the cells are left out rather than misplaced.
    t = bench.table_grid(html, [[0, 0, 5, 5]], (0.0, 0.0))
    assert [c["box"] for c in t["cells"]] == [None, None]
    assert bench.table_grid("<table></table>", [], (0.0, 0.0)) is None


def line(text, box):
    return {"text": text, "score": 0.9, "box": bench.quad(box)}


def test_lines_are_assigned_to_regions_by_centre_like_the_worker():
    found = [
        {"label": "title", "score": 0.9, "box": [10, 10, 300, 40], "table": None},
        {"label": "text", "score": 0.8, "box": [10, 50, 300, 200], "table": None},
        {"label": "text", "score": 0.7, "box": [400, 10, 500, 40], "table": None},  # no lines
        {"label": "figure", "score": 0.6, "box": [10, 400, 300, 600], "table": None},
    ]
    lines = [
        line("Title", [20, 15, 200, 35]),
        line("second", [20, 80, 280, 95]),
        line("first", [20, 60, 280, 75]),
        line("orphan a1", [20, 700, 200, 715]),
        line("orphan a2", [20, 718, 190, 733]),
        line("orphan b", [600, 300, 700, 315]),
    ]
    regions = bench.assign_lines(found, lines)
    got = [(r["label"], r["score"], [x["text"] for x in r["lines"]]) for r in regions]
    assert got == [
        ("title", 0.9, ["Title"]),
        ("text", 0.8, ["first", "second"]),
        ("text", 0.0, ["orphan b"]),
        ("figure", 0.6, []),
        ("text", 0.0, ["orphan a1", "orphan a2"]),
    ]
    assert regions[2]["box"] == [600, 300, 700, 315]
    # Each line in exactly one region.
    assert sorted(x["text"] for r in regions for x in r["lines"]) == sorted(
        x["text"] for x in lines
    )


def test_overlapping_regions_take_the_line_they_overlap_most():
    found = [
        {"label": "text", "score": 0.9, "box": [0, 0, 100, 100], "table": None},
        {"label": "table", "score": 0.9, "box": [40, 40, 200, 200], "table": None},
    ]
    regions = bench.assign_lines(found, [line("cell", [45, 45, 150, 60])])
    assert [(r["label"], len(r["lines"])) for r in regions] == [("table", 1)]


def test_scan_blocks_are_scaled_to_points():
    ds = load_bench("document_score")
    blocks = [ds.Block("paragraph", "x", (150.0, 300.0, 450.0, 600.0))]
    out = bench.scaled(blocks, 72 / 150)
    assert out[0].box == (72.0, 144.0, 216.0, 288.0)
