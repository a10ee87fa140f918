"""Page analyses (layout regions, lines, table grids) → DoclingDocument: reading order, items
per region label, captions, furniture, provenance and exports, from synthetic analyses."""

from __future__ import annotations

import hashlib
import random

import pytest

pytest.importorskip("docling_core")

from docling_core.types.doc import (
    ContentLayer,
    CoordOrigin,
    DocItem,
    DocItemLabel,
    DoclingDocument,
    FormulaItem,
    ListGroup,
    ListItem,
    PictureItem,
    SectionHeaderItem,
    TableItem,
    TextItem,
    TitleItem,
)

from vram_orchestrator.docling._layout_document import (
    AnalyzedPage,
    build_layout_document,
    document_origin,
    join_lines,
    reading_order,
    refined_label,
)

ALL_LAYERS = set(ContentLayer)
LEFT = (100, 580)  # left column, image pixels
RIGHT = (620, 1100)  # right column
FULL = (100, 1100)


def line(text, left, top, right, bottom, score=0.9):
    return {
        "text": text,
        "score": score,
        "box": [[left, top], [right, top], [right, bottom], [left, bottom]],
    }


def region(label, box, text=None, lines=None, table=None):
    """A region; ``text`` alone makes one line filling the region's box."""
    if lines is None:
        lines = [line(text, *box)] if text is not None else []
    return {"label": label, "score": 0.9, "box": list(box), "lines": lines, "table": table}


def col(column, top, bottom):
    return (column[0], top, column[1], bottom)


def analysis(regions, width=1200, height=1600):
    lines = [ln for r in regions for ln in r["lines"]]
    return {"width": width, "height": height, "rotation": 0, "lines": lines, "regions": regions}


def page(regions, page_no=1, width=600.0, height=800.0, scale=2.0):
    """A PDF page of 600x800 points analysed at 2 pixels per point (1200x1600 pixels)."""
    return AnalyzedPage(page_no, width, height, scale, analysis(regions))


def build(*pages, name="paper.pdf", kind="pdf", data=b"%PDF-1.7 test"):
    return build_layout_document(name, kind, data, list(pages))


def one_page(*regions):
    """The document of one analysed page holding ``regions``."""
    return build(page(list(regions)))


def items(doc, layers=None):
    return [item for item, _ in doc.iterate_items(included_content_layers=layers or ALL_LAYERS)]


def texts(doc, layers=None):
    """The items in document order: a text item's text, else its label."""
    return [
        item.text if isinstance(item, TextItem) else str(item.label) for item in items(doc, layers)
    ]


def table_rows(markdown):
    """The cell texts of the markdown tables' rows (separator rows left out)."""
    rows = []
    for md_line in markdown.splitlines():
        if md_line.startswith("|") and not set(md_line) <= set("|-: "):
            rows.append([cell.strip() for cell in md_line.strip("|").split("|")])
    return rows


def grid(rows, cols, cells):
    return {
        "rows": rows,
        "cols": cols,
        "cells": [
            {"row": r, "col": c, "row_span": rs, "col_span": cs, "box": list(box), "text": t}
            for r, c, rs, cs, box, t in cells
        ],
    }


def table_grid(xs, ys, rows):
    """The grid of ``rows`` of cell texts on the column edges ``xs`` and row edges ``ys``; a
    cell spans to the right over the ``None`` entries that follow it."""
    cells = []
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text is None:
                continue
            cs = 1
            while c + cs < len(row) and row[c + cs] is None:
                cs += 1
            cells.append((r, c, 1, cs, (xs[c], ys[r], xs[c + cs], ys[r + 1]), text))
    return grid(len(rows), len(xs) - 1, cells)


# ---------------------------------------------------------------------------------------
# reading_order


def test_reading_order_empty_and_single():
    assert reading_order([]) == []
    assert reading_order([(0, 0, 10, 10)]) == [0]


def test_reading_order_single_column_is_top_to_bottom():
    boxes = [(100, 300, 500, 350), (100, 100, 500, 150), (120, 200, 480, 250)]
    assert reading_order(boxes) == [1, 2, 0]


def test_reading_order_columns_with_aligned_gaps_read_column_by_column():
    # Both columns have a gap at y 300..320: a plain horizontal-first cut would read
    # L1 R1 L2 R2.
    boxes = [
        col(LEFT, 180, 300),  # 0 L1
        col(RIGHT, 180, 300),  # 1 R1
        col(LEFT, 320, 600),  # 2 L2
        col(RIGHT, 320, 600),  # 3 R2
    ]
    assert reading_order(boxes) == [0, 2, 1, 3]


def test_reading_order_full_width_blocks_separate_column_sections():
    boxes = [
        col(FULL, 80, 140),  # 0 title
        col(LEFT, 180, 300),  # 1 L1
        col(RIGHT, 180, 300),  # 2 R1
        col(LEFT, 320, 600),  # 3 L2
        col(RIGHT, 320, 420),  # 4 R2
        col(RIGHT, 440, 600),  # 5 R3
        col(FULL, 640, 900),  # 6 full-width table
        col(LEFT, 940, 1100),  # 7 L3
        col(RIGHT, 940, 1200),  # 8 R4
        col(LEFT, 1120, 1400),  # 9 L4, below the end of the right column
        col(FULL, 1420, 1500),  # 10 full-width closing paragraph
    ]
    expected = [0, 1, 3, 2, 4, 5, 6, 7, 9, 8, 10]
    assert reading_order(boxes) == expected
    # The answer does not depend on the order of the input.
    shuffled = list(range(len(boxes)))
    random.Random(7).shuffle(shuffled)
    got = reading_order([boxes[i] for i in shuffled])
    assert [shuffled[i] for i in got] == expected


def test_reading_order_left_column_continues_past_the_right_one():
    # L3 sits alone below the right column's end: it is still the left column, read
    # before the right column (it does not span the columns).
    boxes = [
        col(LEFT, 100, 200),  # 0
        col(RIGHT, 100, 200),  # 1
        col(LEFT, 220, 350),  # 2
        col(RIGHT, 220, 340),  # 3
        col(LEFT, 360, 420),  # 4 L3
    ]
    assert reading_order(boxes) == [0, 2, 4, 1, 3]


def test_reading_order_region_spanning_the_gutter_separates_blocks():
    # A box across the gutter (not full width) still closes the gap: what follows is a
    # new block.
    boxes = [
        col(LEFT, 100, 200),  # 0
        col(RIGHT, 100, 300),  # 1
        (300, 320, 900, 380),  # 2 across the gutter
        col(LEFT, 400, 500),  # 3
        col(RIGHT, 400, 450),  # 4
    ]
    assert reading_order(boxes) == [0, 1, 2, 3, 4]


def test_reading_order_three_columns():
    boxes = [
        (700, 100, 900, 400),
        (100, 100, 300, 200),
        (400, 100, 600, 400),
        (100, 220, 300, 400),
        (100, 20, 900, 60),
    ]
    assert reading_order(boxes) == [4, 1, 3, 2, 0]


def test_reading_order_tolerates_small_vertical_overlaps():
    # Detected boxes overlap their neighbours by a few pixels: the full-width table still
    # separates the column sections.
    boxes = [
        col(LEFT, 100, 305),  # 0
        col(RIGHT, 100, 200),  # 1
        col(RIGHT, 220, 303),  # 2
        col(FULL, 300, 500),  # 3 table, overlapping the paragraphs above and below
        col(LEFT, 497, 700),  # 4
        col(RIGHT, 498, 650),  # 5
        col(LEFT, 720, 800),  # 6
    ]
    assert reading_order(boxes) == [0, 1, 2, 3, 4, 6, 5]


def test_reading_order_many_boxes():
    # A staircase (each box overlapping the next in both axes) and a long single column.
    stairs = [(i * 10, i * 10, i * 10 + 15, i * 10 + 15) for i in range(2000)]
    assert reading_order(stairs) == list(range(2000))
    column = [(100, i * 20, 500, i * 20 + 15) for i in range(3000)][::-1]
    assert reading_order(column) == list(range(2999, -1, -1))


def test_reading_order_overlapping_boxes_top_then_left():
    boxes = [(50, 10, 200, 100), (0, 0, 100, 50), (150, 20, 300, 120)]
    assert reading_order(boxes) == [1, 0, 2]


# ---------------------------------------------------------------------------------------
# Text of a region


def test_join_lines_hyphenation():
    assert join_lines(["A docu-", "ment about"]) == "A document about"
    assert join_lines(["well-", "Known"]) == "well- Known"  # capital: not a split word
    assert join_lines(["in 1990-", "ties"]) == "in 1990- ties"  # a digit before the hyphen
    assert join_lines(["a dash -", "then"]) == "a dash - then"
    assert join_lines(["soft\u00ad", "hyphen"]) == "softhyphen"
    assert join_lines(["  spaced ", "", " out  "]) == "spaced out"
    assert join_lines([]) == ""


def test_paragraph_lines_sorted_and_joined():
    lines = [
        line("ment and more.", 100, 150, 500, 170),  # second row
        line("cut", 400, 122, 500, 141),  # first row, right part (a little lower)
        line("A docu-", 100, 120, 380, 140),  # first row, left part
    ]
    # Two boxes on the first row (the right one a little lower), read left to right and
    # joined by a space; the row ends with "cut", so no word is joined across the break.
    doc = one_page(region("text", (100, 120, 500, 170), lines=lines))
    assert texts(doc) == ["A docu- cut ment and more."]

    lines = [line("ment here.", 100, 150, 500, 170), line("A docu-", 100, 120, 500, 140)]
    doc = one_page(region("text", (100, 120, 500, 170), lines=lines))
    assert texts(doc) == ["A document here."]
    assert doc.texts[0].label == DocItemLabel.TEXT
    assert doc.texts[0].prov[0].charspan == (0, len("A document here."))


# ---------------------------------------------------------------------------------------
# The document


def two_column_page():
    table = table_grid((100, 600, 1100), (640, 770, 900), [["Name", "Value"], ["alpha", "1.5"]])
    # In the worker's order: top to bottom by box top.
    return page(
        [
            region("header", col(FULL, 20, 50), "Proceedings of Things 2024"),
            region("title", col(FULL, 80, 140), "Reading Order in Practice"),
            region("text", col(LEFT, 180, 300), "Left one."),
            region("text", col(RIGHT, 180, 300), "Right one."),
            region("text", col(LEFT, 320, 600), "Left two."),
            region("text", col(RIGHT, 320, 420), "Right two."),
            region("text", col(RIGHT, 440, 600), "Right three."),
            region("table", col(FULL, 640, 900), table=table),
            region("text", col(LEFT, 940, 1100), "Left three."),
            region("text", col(RIGHT, 940, 1200), "Right four."),
            region("text", col(LEFT, 1120, 1400), "Left four."),
            region("footer", col(FULL, 1540, 1570), "Page 1"),
        ]
    )


def test_two_columns_full_width_title_and_table_reading_order():
    doc = build(two_column_page())
    assert texts(doc) == [
        "Proceedings of Things 2024",
        "Reading Order in Practice",
        "Left one.",
        "Left two.",
        "Right one.",
        "Right two.",
        "Right three.",
        "table",
        "Left three.",
        "Left four.",
        "Right four.",
        "Page 1",
    ]
    assert isinstance(doc.texts[1], TitleItem)
    table = doc.tables[0]
    assert [[c.text for c in row] for row in table.data.grid] == [
        ["Name", "Value"],
        ["alpha", "1.5"],
    ]
    assert table_rows(doc.export_to_markdown()) == [["Name", "Value"], ["alpha", "1.5"]]


def test_header_and_footer_are_furniture():
    doc = build(two_column_page())
    header = next(t for t in doc.texts if t.text == "Proceedings of Things 2024")
    footer = next(t for t in doc.texts if t.text == "Page 1")
    assert header.label == DocItemLabel.PAGE_HEADER
    assert footer.label == DocItemLabel.PAGE_FOOTER
    assert header.content_layer == footer.content_layer == ContentLayer.FURNITURE
    assert all(t.content_layer == ContentLayer.BODY for t in doc.texts if t not in (header, footer))
    markdown = doc.export_to_markdown()
    assert "Proceedings of Things" not in markdown and "Page 1" not in markdown
    assert markdown.startswith("# Reading Order in Practice\n\nLeft one.\n\nLeft two.")
    assert "Proceedings of Things" not in doc.export_to_text()
    everything = doc.export_to_markdown(included_content_layers=ALL_LAYERS)
    assert everything.startswith("Proceedings of Things 2024\n\n# Reading Order in Practice")
    assert everything.rstrip().endswith("Page 1")


def test_table_with_colspan_header():
    # A header cell over both columns, then two rows of cells.
    table = table_grid(
        (100, 600, 1100),
        (300, 340, 380, 420),
        [["Measured values", None], ["length", "12 mm"], ["weight", "3 g"]],
    )
    doc = one_page(
        region("text", col(FULL, 200, 260), "Before the table."),
        region("table", col(FULL, 300, 420), table=table),
        region("text", col(FULL, 460, 500), "After the table."),
    )
    [item] = doc.tables
    data = item.data
    assert (data.num_rows, data.num_cols) == (3, 2)
    cells = [
        (
            c.text,
            c.start_row_offset_idx,
            c.end_row_offset_idx,
            c.start_col_offset_idx,
            c.end_col_offset_idx,
            c.row_span,
            c.col_span,
            c.column_header,
        )
        for c in data.table_cells
    ]
    assert cells == [
        ("Measured values", 0, 1, 0, 2, 1, 2, True),
        ("length", 1, 2, 0, 1, 1, 1, False),
        ("12 mm", 1, 2, 1, 2, 1, 1, False),
        ("weight", 2, 3, 0, 1, 1, 1, False),
        ("3 g", 2, 3, 1, 2, 1, 1, False),
    ]
    # Cell boxes in page units, top-left origin (pixels / 2).
    first = data.table_cells[0].bbox
    assert (first.l, first.t, first.r, first.b) == (50, 150, 550, 170)
    assert first.coord_origin == CoordOrigin.TOPLEFT
    markdown = doc.export_to_markdown()
    assert table_rows(markdown) == [
        ["Measured values", "Measured values"],
        ["length", "12 mm"],
        ["weight", "3 g"],
    ]
    assert markdown.index("Before the table.") < markdown.index("| length")
    assert markdown.index("| weight") < markdown.index("After the table.")
    html = doc.export_to_html()
    assert '<th colspan="2">Measured values</th>' in html
    assert "<td>length</td><td>12 mm</td>" in html


def test_table_grid_cells_outside_the_grid_are_dropped_and_spans_clamped():
    table = grid(
        2,
        2,
        [
            (0, 0, 1, 3, (100, 300, 1100, 340), "wide"),  # spans past the last column
            (1, 0, 1, 1, (100, 340, 600, 380), "a"),
            (5, 0, 1, 1, (100, 340, 600, 380), "lost"),  # row 5 of 2
        ],
    )
    doc = one_page(region("table", col(FULL, 300, 380), table=table))
    cells = doc.tables[0].data.table_cells
    assert [(c.text, c.end_col_offset_idx, c.col_span) for c in cells] == [
        ("wide", 2, 2),
        ("a", 1, 1),
    ]


def test_table_without_grid_is_one_column_of_its_lines():
    lines = [
        line("Total 12", 100, 340, 1100, 370),
        line("Item Count", 100, 300, 1100, 330),
    ]
    doc = one_page(region("table", col(FULL, 300, 370), lines=lines))
    data = doc.tables[0].data
    assert (data.num_rows, data.num_cols) == (2, 1)
    assert [c.text for c in data.table_cells] == ["Item Count", "Total 12"]
    assert not any(c.column_header for c in data.table_cells)
    assert table_rows(doc.export_to_markdown()) == [["Item Count"], ["Total 12"]]

    empty = one_page(region("table", col(FULL, 300, 370)))
    assert (empty.tables[0].data.num_rows, empty.tables[0].data.num_cols) == (0, 0)
    empty.export_to_markdown()
    empty.export_to_html()


def test_table_caption_goes_to_the_nearest_table_in_its_column():
    left_table = table_grid(LEFT, (300, 500), [["left cell"]])
    right_table = table_grid(RIGHT, (300, 500), [["right cell"]])
    lower_table = table_grid(LEFT, (700, 900), [["lower cell"]])
    doc = one_page(
        region("table_caption", col(LEFT, 250, 290), "Table 1: left"),
        region("table_caption", col(RIGHT, 250, 290), "Table 2: right"),
        region("table", col(LEFT, 300, 500), table=left_table),
        region("table", col(RIGHT, 300, 500), table=right_table),
        # Nearer the lower table (below the caption) than the left table above.
        region("table_caption", col(LEFT, 640, 680), "Table 3: lower"),
        region("table", col(LEFT, 700, 900), table=lower_table),
        # Text between it and the right table: no table for this caption.
        region("text", col(RIGHT, 600, 1200), "Right column text."),
        region("table_caption", col(RIGHT, 1300, 1340), "Table 4: no table here"),
    )
    captions = [t.caption_text(doc) for t in doc.tables]
    assert captions == ["Table 1: left", "Table 3: lower", "Table 2: right"]
    assert [t.data.table_cells[0].text for t in doc.tables] == [
        "left cell",
        "lower cell",
        "right cell",
    ]
    for table in doc.tables:
        caption = table.captions[0].resolve(doc)
        assert caption.label == DocItemLabel.CAPTION
        assert caption.parent.cref == table.self_ref
    # The caption without a table stays a caption item in the body, in reading order.
    orphan = next(t for t in doc.texts if t.text == "Table 4: no table here")
    assert orphan.label == DocItemLabel.CAPTION
    assert orphan.parent.cref == "#/body"
    assert texts(doc) == [
        "table",
        "Table 1: left",
        "table",
        "Table 3: lower",
        "table",
        "Table 2: right",
        "Right column text.",
        "Table 4: no table here",
    ]
    markdown = doc.export_to_markdown()
    assert markdown.index("Table 1: left") < markdown.index("left cell")
    assert markdown.index("Table 3: lower") < markdown.index("lower cell")


def test_figure_with_caption():
    doc = one_page(
        region("text", col(FULL, 100, 160), "See the plot."),
        region(
            "figure",
            col(LEFT, 200, 600),
            lines=[line("0", 120, 560, 140, 580), line("time", 300, 565, 400, 585)],
        ),
        region("figure_caption", col(LEFT, 620, 660), "Figure 1: Growth over time."),
        region("text", col(RIGHT, 200, 660), "The right column."),
    )
    [picture] = doc.pictures
    assert isinstance(picture, PictureItem)
    assert picture.caption_text(doc) == "Figure 1: Growth over time."
    caption = picture.captions[0].resolve(doc)
    assert caption.label == DocItemLabel.CAPTION
    assert caption.parent.cref == picture.self_ref
    # The text drawn in the figure: one row, inside the picture.
    inner = [ref.resolve(doc) for ref in picture.children if ref.cref != caption.self_ref]
    assert [t.text for t in inner] == ["0 time"]
    prov = picture.prov[0]
    assert (prov.bbox.l, prov.bbox.t, prov.bbox.r, prov.bbox.b) == (50, 700, 290, 500)
    assert prov.charspan == (0, 0)
    markdown = doc.export_to_markdown()
    assert markdown == (
        "See the plot.\n\nFigure 1: Growth over time.\n\n<!-- image -->\n\nThe right column."
    )


def test_formula_item():
    doc = one_page(
        region("text", col(FULL, 100, 160), "Energy is"),
        region("equation", col(FULL, 200, 260), "E = mc^2"),
    )
    formula = doc.texts[1]
    assert isinstance(formula, FormulaItem)
    assert formula.label == DocItemLabel.FORMULA
    assert formula.text == "E = mc^2"
    assert doc.export_to_markdown() == "Energy is\n\n$$E = mc^2$$"


def test_heading_levels_from_numbering():
    doc = build(
        page(
            [
                region("title", col(FULL, 50, 100), "A Study of Layout"),
                region("title", col(FULL, 120, 150), "1 Introduction"),
                region("text", col(FULL, 160, 200), "Some text."),
                region("title", col(FULL, 220, 250), "2.3 Methods"),
                region("title", col(FULL, 260, 290), "2.3.1. Details"),
                region("title", col(FULL, 300, 330), "Conclusion"),
                region("title", col(FULL, 340, 370), "A Study of Layout, again"),
            ]
        ),
        page([region("title", col(FULL, 50, 100), "Page Two Title")], page_no=2),
    )
    got = [
        (type(t).__name__, getattr(t, "level", None), t.text)
        for t in doc.texts
        if t.label != DocItemLabel.TEXT
    ]
    assert got == [
        ("TitleItem", None, "A Study of Layout"),
        ("SectionHeaderItem", 1, "1 Introduction"),
        ("SectionHeaderItem", 2, "2.3 Methods"),
        ("SectionHeaderItem", 3, "2.3.1. Details"),
        ("SectionHeaderItem", 1, "Conclusion"),
        ("SectionHeaderItem", 1, "A Study of Layout, again"),
        ("SectionHeaderItem", 1, "Page Two Title"),
    ]
    assert doc.export_to_markdown().splitlines()[:5] == [
        "# A Study of Layout",
        "",
        "## 1 Introduction",
        "",
        "Some text.",
    ]


def test_numbered_first_title_is_a_section_header():
    doc = one_page(region("title", col(FULL, 50, 100), "1 Introduction"))
    [item] = doc.texts
    assert isinstance(item, SectionHeaderItem) and item.level == 1


def test_title_only_on_the_first_page():
    doc = build(
        AnalyzedPage(1, 600, 800, 2.0, None, "render failed"),
        page([region("title", col(FULL, 50, 100), "Second Page Title")], page_no=2),
    )
    [item] = doc.texts
    assert isinstance(item, SectionHeaderItem)


def test_lists():
    doc = one_page(
        region(
            "text",
            col(FULL, 100, 200),
            lines=[
                line("• first point", 100, 100, 1100, 130),
                line("continued here", 140, 135, 1100, 165),
                line("• second point", 100, 170, 1100, 200),
            ],
        ),
        region("text", col(FULL, 210, 240), "- third point"),
        region("text", col(FULL, 260, 300), "-5 °C is cold."),
        region(
            "text",
            col(FULL, 320, 400),
            lines=[
                line("1. one", 100, 320, 1100, 350),
                line("2. two", 100, 360, 1100, 390),
            ],
        ),
        region("text", col(FULL, 420, 450), "a) letter"),
    )
    body = [item for item, _ in doc.iterate_items(with_groups=True)]
    shape = [
        (type(i).__name__, i.text if isinstance(i, TextItem) else None)
        for i in body
        if isinstance(i, (ListGroup, TextItem))
    ]
    assert shape == [
        ("ListGroup", None),
        ("ListItem", "first point continued here"),
        ("ListItem", "second point"),
        ("ListItem", "third point"),
        ("TextItem", "-5 °C is cold."),
        ("ListGroup", None),
        ("ListItem", "one"),
        ("ListItem", "two"),
        ("ListItem", "letter"),
    ]
    list_items = [t for t in doc.texts if isinstance(t, ListItem)]
    assert [(t.marker, t.enumerated) for t in list_items] == [
        ("•", False),
        ("•", False),
        ("-", False),
        ("1.", True),
        ("2.", True),
        ("a)", True),
    ]
    # Each item's box covers its own lines.
    first = list_items[0].prov[0].bbox
    assert (first.l, first.t, first.r, first.b) == (50, 750, 550, 717.5)
    assert doc.export_to_markdown().startswith(
        "- first point continued here\n- second point\n- third point\n\n-5 °C is cold."
    )


def test_line_boxes_as_plain_boxes():
    lines = [
        {"text": "two", "box": [100, 150, 500, 170]},
        {"text": "one", "box": [100, 120, 500, 140]},
    ]
    doc = one_page(region("text", (100, 120, 500, 170), lines=lines))
    assert texts(doc) == ["one two"]


def test_reference_region():
    doc = one_page(region("reference", col(FULL, 100, 140), "[1] A. Author, 2020."))
    [item] = doc.texts
    assert item.label == DocItemLabel.REFERENCE
    assert "[1] A. Author, 2020." in doc.export_to_markdown()


def test_empty_page():
    doc = one_page()
    assert list(doc.pages) == [1]
    assert (doc.pages[1].size.width, doc.pages[1].size.height) == (600, 800)
    assert items(doc) == []
    assert doc.texts == [] and doc.tables == [] and doc.pictures == [] and doc.groups == []
    assert doc.export_to_markdown() == ""


def test_failed_page_has_a_page_and_no_items():
    pages = [
        page([region("text", col(FULL, 100, 140), "Page one.")]),
        AnalyzedPage(2, 612, 792, 2.0, None, "page 2: analysis failed"),
        page([region("text", col(FULL, 100, 140), "Page three.")], page_no=3),
    ]
    doc = build(*pages)
    assert sorted(doc.pages) == [1, 2, 3]
    assert (doc.pages[2].size.width, doc.pages[2].size.height) == (612, 792)
    assert [(t.text, t.prov[0].page_no) for t in doc.texts] == [
        ("Page one.", 1),
        ("Page three.", 3),
    ]
    assert [t.text for t, _ in doc.iterate_items(page_no=2)] == []


def test_pages_in_page_number_order():
    doc = build(
        page([region("text", col(FULL, 100, 140), "two")], page_no=2),
        page([region("text", col(FULL, 100, 140), "one")], page_no=1),
    )
    assert texts(doc) == ["one", "two"]


def full_document():
    """Every kind of item on one page, a failed page, and an image-like page."""
    return build(
        two_column_page(),
        AnalyzedPage(2, 600, 800, 2.0, None, "page 2: analysis failed"),
        page(
            [
                region("title", col(FULL, 40, 90), "3.1 Results"),
                region("figure", col(LEFT, 100, 400), lines=[line("x", 200, 380, 220, 398)]),
                region("figure_caption", col(LEFT, 410, 440), "Figure 2: Things."),
                region("equation", col(RIGHT, 100, 160), "a^2 + b^2 = c^2"),
                region("text", col(RIGHT, 180, 240), "• a point"),
                region("reference", col(RIGHT, 260, 300), "[2] Ref."),
                region("table_caption", col(FULL, 460, 490), "Table 2: No grid."),
                region("table", col(FULL, 500, 600), lines=[line("k v", 100, 500, 1100, 540)]),
                # Boxes past the image's edge are clamped to the page.
                region("text", (-20, 1550, 1300, 1700), "Off the edge."),
            ],
            page_no=3,
        ),
    )


def test_every_item_has_provenance_within_the_page():
    doc = full_document()
    all_items = [i for i in items(doc) if isinstance(i, DocItem)]
    assert len(all_items) >= 20
    for item in all_items:
        assert len(item.prov) == 1, item.self_ref
        prov = item.prov[0]
        size = doc.pages[prov.page_no].size
        box = prov.bbox
        assert box.coord_origin == CoordOrigin.BOTTOMLEFT
        assert 0 <= box.l <= box.r <= size.width, item.self_ref
        assert 0 <= box.b <= box.t <= size.height, item.self_ref
        text = item.text if isinstance(item, TextItem) else ""
        assert prov.charspan == (0, len(text))
    # The picture's inner texts and the captions are there too.
    assert any(isinstance(i, PictureItem) for i in all_items)
    edge = next(t for t in doc.texts if t.text == "Off the edge.").prov[0].bbox
    assert (edge.l, edge.t, edge.r, edge.b) == (0, 25, 600, 0)


def test_title_provenance_box():
    doc = build(two_column_page())
    box = doc.texts[1].prov[0].bbox  # title at pixels (100, 80, 1100, 140), scale 2
    assert (box.l, box.t, box.r, box.b) == (50, 760, 550, 730)


def test_all_exports_and_json_round_trip():
    doc = full_document()
    markdown = doc.export_to_markdown()
    assert "### 3.1 Results" in markdown
    assert "$$a^2 + b^2 = c^2$$" in markdown
    assert "- a point" in markdown
    assert ["k v"] in table_rows(markdown)
    html = doc.export_to_html()
    assert "<h1>Reading Order in Practice</h1>" in html
    assert "<td>alpha</td><td>1.5</td>" in html
    assert "Figure 2: Things." in html
    text = doc.export_to_text()
    assert "Left two." in text and "Proceedings" not in text
    doctags = doc.export_to_doctags()
    assert "<title>" in doctags and "<otsl>" in doctags and "<formula>" in doctags
    assert "<page_header>" in doctags and "<page_footer>" in doctags
    with pytest.warns(DeprecationWarning):
        assert doc.export_to_document_tokens() == doctags
    doc.export_to_dict()

    dumped = doc.model_dump_json()
    again = DoclingDocument.model_validate_json(dumped)
    assert again.model_dump_json() == dumped
    assert again.export_to_markdown() == markdown
    assert again.export_to_html() == html
    assert isinstance(again.tables[0], TableItem)
    assert again.pictures[0].caption_text(again) == "Figure 2: Things."


def test_origin():
    data = b"\x89PNG fake image bytes"
    doc = build_layout_document(
        "scans/photo.JPG", "image", data, [AnalyzedPage(1, 800, 600, 1.0, analysis([]))]
    )
    assert doc.name == "photo"
    assert doc.origin.mimetype == "image/jpeg"
    assert doc.origin.filename == "scans/photo.JPG"
    assert doc.origin.binary_hash == int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    assert document_origin("a.png", "image", data).mimetype == "image/png"
    pdf = document_origin("doc.pdf", "pdf", b"%PDF")
    assert pdf.mimetype == "application/pdf"
    given = build_layout_document("x.pdf", "pdf", b"", [], origin=pdf)
    assert given.origin == pdf and given.name == "x"


def test_image_page_at_scale_one():
    doc = build_layout_document(
        "page.png",
        "image",
        b"png",
        [AnalyzedPage(1, 1000, 500, 1.0, analysis([region("text", (10, 20, 300, 60), "Hi")]))],
    )
    box = doc.texts[0].prov[0].bbox
    assert (box.l, box.t, box.r, box.b) == (10, 480, 300, 440)


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale"):
        AnalyzedPage(1, 10, 10, 0.0, None)


@pytest.mark.parametrize(
    "label, text, expected",
    [
        ("text", "2 Method", "title"),
        ("text", "3.1 Data Sources", "title"),
        ("text", "2 cores were used in every run", "text"),  # lowercase after the number
        ("text", "1. Install the package.", "text"),  # a sentence, not a heading
        ("text", "Plain words without a number", "text"),
        ("text", "Table 2: Index size and build time.", "table_caption"),
        ("title", "Figure 3: Queries per second.", "figure_caption"),
        ("text", "Fig. 4. Latency by load", "figure_caption"),
        ("text", "Tables 2 and 3 show", "text"),
        ("header", "2 Method", "header"),  # furniture stays furniture
    ],
)
def test_labels_are_corrected_by_their_text(label, text, expected):
    assert refined_label(region(label, (100, 100, 500, 130), text)) == expected


def test_short_lines_larger_than_the_body_are_headings():
    heading = region("text", (100, 100, 300, 130), "Requirements")  # 30 px high
    assert refined_label(heading, body_height=20.0) == "title"
    assert refined_label(heading, body_height=28.0) == "text", "body-sized: not a heading"
    assert refined_label(heading) == "text", "no body height known"
    sentence = region("text", (100, 100, 300, 130), "It ran well.")
    assert refined_label(sentence, body_height=20.0) == "text"


def test_an_equation_boxed_as_title_is_a_formula():
    block = region("title", (100, 100, 500, 130), "limit = workers * (1 + burst factor)")
    assert refined_label(block) == "equation"


def test_a_figure_of_nothing_but_text_is_text():
    block = region("figure", (100, 100, 500, 130), "The quick brown fox jumps over the lazy dog.")
    assert refined_label(block) == "text"
    chart = region("figure", (100, 100, 500, 400), lines=[line("Load", 280, 380, 320, 395)])
    assert refined_label(chart) == "figure"


def test_a_numbered_heading_boxed_as_text_becomes_a_section_header():
    doc = one_page(region("text", col(FULL, 100, 130), "2 Method"))
    [item] = list(doc.iterate_items())
    assert item[0].label == DocItemLabel.SECTION_HEADER
    assert item[0].text == "2 Method"
