//! Page analysis: the page's lines (OCR, or the text the caller already has), its layout
//! regions, and the grid of every table, in one task.
//!
//! Everything is worked out on the upright page (OCR may have found it turned) and the boxes
//! handed back are in input pixels, like OCR's. The layout and table models are sessions of
//! their own, created on the first analysis that needs them, so OCR-only workers never pay
//! for them.

use std::time::Instant;

use image::RgbImage;

use crate::geometry::{rect_area as area, rect_intersection as intersection, Quad};
use crate::layout::{Layout, LayoutBox};
use crate::orientation::{self, Turn};
use crate::table::{fill_cells, TableGrid, TableRecognizer};
use crate::{EngineOptions, OcrError, TextLine};

/// Labels whose regions only matter through their lines: without any they are dropped
/// (the layout model sometimes boxes empty space as text).
const PICTURE_LABELS: [&str; 2] = ["figure", "table"];
/// Rows of side-by-side text that make a "figure" a table (see `is_grid`).
const GRID_ROWS: usize = 3;
/// A region this much inside a table (by its own area) is part of the table.
const IN_TABLE: f32 = 0.6;
/// Table crops reach this far past the region (in page pixels): the layout box often cuts
/// the outer rule or the first letters, which the structure model needs.
const TABLE_MARGIN_PX: f32 = 6.0;

/// What an analysis does beyond OCR.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// Table structure for every table region.
    pub tables: bool,
    /// The page's own text with its boxes (l, t, r, b) in input pixels: taken as the page's
    /// lines instead of OCR.
    pub text_cells: Option<Vec<(String, [f32; 4])>>,
}

/// One region of the page; boxes are (l, t, r, b) in input pixels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PageRegion {
    pub label: String,
    /// 0 for a region made of lines that no detected region held.
    pub score: f32,
    pub bbox: [f32; 4],
    /// Indices into the page's lines, top to bottom and left to right.
    pub lines: Vec<u32>,
    pub table: Option<RegionTable>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionTable {
    pub rows: u32,
    pub cols: u32,
    pub cells: Vec<RegionCell>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegionCell {
    pub row: u32,
    pub col: u32,
    pub row_span: u32,
    pub col_span: u32,
    pub bbox: [f32; 4],
    pub text: String,
}

/// The layout part of an analysis (the lines are the OCR output's).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PageLayout {
    pub regions: Vec<PageRegion>,
    pub layout_ms: f64,
    pub table_ms: f64,
}

/// The layout and table sessions, created when first needed.
pub(crate) struct DocumentModels {
    opts: EngineOptions,
    layout: Option<Layout>,
    table: Option<TableRecognizer>,
}

/// The model in `slot`, opened by `open` on first use.
fn lazily<'a, M>(
    slot: &'a mut Option<M>,
    opts: &EngineOptions,
    role: &str,
    open: fn(&EngineOptions) -> Result<M, OcrError>,
) -> Result<&'a mut M, OcrError> {
    if slot.is_none() {
        let t = Instant::now();
        *slot = Some(open(opts)?);
        log::info!("{role} model loaded in {:.0} ms", ms(t));
    }
    Ok(slot.as_mut().expect("set above"))
}

impl DocumentModels {
    pub fn new(opts: EngineOptions) -> DocumentModels {
        DocumentModels {
            opts,
            layout: None,
            table: None,
        }
    }

    /// Regions and tables of `img` (the decoded input), whose `lines` (in input pixels)
    /// were found with the page turned `turn` degrees.
    pub fn analyze(
        &mut self,
        img: &RgbImage,
        turn: Turn,
        lines: &[TextLine],
        tables: bool,
        model_ms: &mut f64,
    ) -> Result<PageLayout, OcrError> {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let turned;
        let upright = if turn == 0 {
            img
        } else {
            turned = orientation::upright(img, turn);
            &turned
        };
        let (uw, uh) = (upright.width() as f32, upright.height() as f32);
        let back = |r: [f32; 4]| rect_to_input(r, turn, w, h);
        let to_upright =
            |q: &Quad| rect_of(&orientation::box_to_input(q, (360 - turn) % 360, uw, uh));
        let line_rects: Vec<[f32; 4]> = lines.iter().map(|l| to_upright(&l.bbox)).collect();

        let t = Instant::now();
        let found = lazily(&mut self.layout, &self.opts, "layout", Layout::open)?
            .detect(upright, model_ms)?;
        let layout_ms = ms(t);
        let mut regions = assign(&found, &line_rects);

        let t = Instant::now();
        if tables {
            for region in regions.iter_mut().filter(|r| r.label == "table") {
                let grid = self.table_grid(upright, region, &line_rects, lines, model_ms)?;
                region.table = Some(grid);
            }
        }
        let table_ms = ms(t);
        let regions = regions
            .into_iter()
            .map(|r| PageRegion {
                bbox: back(r.bbox),
                table: r.table.map(|mut t| {
                    for cell in &mut t.cells {
                        cell.bbox = back(cell.bbox);
                    }
                    t
                }),
                ..r
            })
            .collect();
        Ok(PageLayout {
            regions,
            layout_ms,
            table_ms,
        })
    }

    /// The table of `region` (upright pixels): structure on its crop, then each cell's text
    /// from the lines whose centre lies in the region.
    fn table_grid(
        &mut self,
        page: &RgbImage,
        region: &PageRegion,
        line_rects: &[[f32; 4]],
        lines: &[TextLine],
        model_ms: &mut f64,
    ) -> Result<RegionTable, OcrError> {
        let [l, t, r, b] = region.bbox;
        let x0 = (l - TABLE_MARGIN_PX).max(0.0).floor() as u32;
        let y0 = (t - TABLE_MARGIN_PX).max(0.0).floor() as u32;
        let x1 = ((r + TABLE_MARGIN_PX).ceil() as u32).min(page.width());
        let y1 = ((b + TABLE_MARGIN_PX).ceil() as u32).min(page.height());
        if x1 <= x0 + 1 || y1 <= y0 + 1 {
            return Ok(RegionTable {
                rows: 0,
                cols: 0,
                cells: Vec::new(),
            });
        }
        let crop = image::imageops::crop_imm(page, x0, y0, x1 - x0, y1 - y0).to_image();
        let mut grid: TableGrid =
            lazily(&mut self.table, &self.opts, "table", TableRecognizer::open)?
                .structure(&crop, model_ms)?;
        let (dx, dy) = (x0 as f32, y0 as f32);
        let held: Vec<(String, [f32; 4])> = region
            .lines
            .iter()
            .map(|&i| {
                let [l, t, r, b] = line_rects[i as usize];
                (
                    lines[i as usize].text.clone(),
                    [l - dx, t - dy, r - dx, b - dy],
                )
            })
            .collect();
        fill_cells(&mut grid, &held);
        Ok(RegionTable {
            rows: grid.rows,
            cols: grid.cols,
            cells: grid
                .cells
                .into_iter()
                .map(|c| RegionCell {
                    row: c.row,
                    col: c.col,
                    row_span: c.row_span,
                    col_span: c.col_span,
                    bbox: [
                        c.bbox[0] + dx,
                        c.bbox[1] + dy,
                        c.bbox[2] + dx,
                        c.bbox[3] + dy,
                    ],
                    text: c.text,
                })
                .collect(),
        })
    }
}

/// The page's lines from text the caller already has (score 1, corners clockwise from
/// top-left); empty texts are dropped.
pub(crate) fn lines_from_cells(cells: &[(String, [f32; 4])]) -> Vec<TextLine> {
    cells
        .iter()
        .filter(|(text, _)| !text.trim().is_empty())
        .map(|(text, [l, t, r, b])| TextLine {
            text: text.clone(),
            score: 1.0,
            bbox: [[*l, *t], [*r, *t], [*r, *b], [*l, *b]],
        })
        .collect()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn rect_of(q: &Quad) -> [f32; 4] {
    let xs = q.iter().map(|p| p[0]);
    let ys = q.iter().map(|p| p[1]);
    [
        xs.clone().fold(f32::INFINITY, f32::min),
        ys.clone().fold(f32::INFINITY, f32::min),
        xs.fold(f32::NEG_INFINITY, f32::max),
        ys.fold(f32::NEG_INFINITY, f32::max),
    ]
}

/// A box on the upright page in input pixels (`w` x `h`).
fn rect_to_input([l, t, r, b]: [f32; 4], turn: Turn, w: f32, h: f32) -> [f32; 4] {
    rect_of(&orientation::box_to_input(
        &[[l, t], [r, t], [r, b], [l, b]],
        turn,
        w,
        h,
    ))
}

fn contains([l, t, r, b]: [f32; 4], [x, y]: [f32; 2]) -> bool {
    x >= l && x <= r && y >= t && y <= b
}

fn centre([l, t, r, b]: [f32; 4]) -> [f32; 2] {
    [(l + r) / 2.0, (t + b) / 2.0]
}

/// Puts every line into one region: of the detected regions holding its centre, the one it
/// overlaps most (the smaller on a tie); lines in none form regions of their own ("text",
/// score 0), one per block of lines that touch. Regions without lines are dropped unless
/// they are pictures or tables. Sorted top to bottom, then left to right.
pub(crate) fn assign(found: &[LayoutBox], lines: &[[f32; 4]]) -> Vec<PageRegion> {
    // A table's rows are often also boxed as text; its lines belong to the table.
    let in_table = |f: &LayoutBox| {
        f.label != "table"
            && found.iter().any(|t| {
                t.label == "table" && intersection(f.bbox, t.bbox) >= IN_TABLE * area(f.bbox)
            })
    };
    let found: Vec<&LayoutBox> = found.iter().filter(|f| !in_table(f)).collect();
    let mut held: Vec<Vec<u32>> = vec![Vec::new(); found.len()];
    let mut orphans = Vec::new();
    for (i, &line) in lines.iter().enumerate() {
        let c = centre(line);
        let best = found
            .iter()
            .enumerate()
            .filter(|(_, f)| contains(f.bbox, c))
            .map(|(k, f)| (k, *f))
            .max_by(|(_, a), (_, b)| {
                let key = |f: &LayoutBox| (intersection(f.bbox, line), -area(f.bbox));
                key(a)
                    .partial_cmp(&key(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        match best {
            Some((k, _)) => held[k].push(i as u32),
            None => orphans.push(i as u32),
        }
    }
    let mut regions: Vec<PageRegion> = found
        .iter()
        .zip(held)
        .filter(|(f, held)| !held.is_empty() || PICTURE_LABELS.contains(&f.label.as_str()))
        .map(|(f, held)| PageRegion {
            label: f.label.to_string(),
            score: f.score,
            bbox: f.bbox,
            lines: held,
            table: None,
        })
        .collect();
    for block in blocks(&orphans, lines) {
        let bbox = block
            .iter()
            .map(|&i| lines[i as usize])
            .reduce(|a, b| {
                [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ]
            })
            .expect("a block has a line");
        regions.push(PageRegion {
            label: "text".to_string(),
            score: 0.0,
            bbox,
            lines: block,
            table: None,
        });
    }
    for region in &mut regions {
        reading_order(&mut region.lines, lines);
        if region.label == "figure" && is_grid(&region.lines, lines) {
            region.label = "table".to_string();
        }
    }
    regions.sort_by(|a, b| {
        a.bbox[1]
            .total_cmp(&b.bbox[1])
            .then(a.bbox[0].total_cmp(&b.bbox[0]))
    });
    regions
}

/// Groups lines into blocks: a line joins a block whose box it overlaps horizontally and
/// whose last line ends less than one line height above it.
fn blocks(ids: &[u32], lines: &[[f32; 4]]) -> Vec<Vec<u32>> {
    let mut ids = ids.to_vec();
    ids.sort_by(|&a, &b| lines[a as usize][1].total_cmp(&lines[b as usize][1]));
    let mut out: Vec<(Vec<u32>, [f32; 4])> = Vec::new();
    for i in ids {
        let r = lines[i as usize];
        let height = r[3] - r[1];
        let joined = out.iter_mut().rev().find(|(_, b)| {
            let overlap = r[0] < b[2] && r[2] > b[0];
            overlap && r[1] - b[3] < height && r[1] >= b[1]
        });
        match joined {
            Some((members, b)) => {
                members.push(i);
                *b = [
                    b[0].min(r[0]),
                    b[1].min(r[1]),
                    b[2].max(r[2]),
                    b[3].max(r[3]),
                ];
            }
            None => out.push((vec![i], r)),
        }
    }
    out.into_iter().map(|(members, _)| members).collect()
}

/// Whether lines are laid out as a table: at least `GRID_ROWS` rows of text with two or more
/// pieces side by side, holding most of the lines. The layout model boxes some tables as
/// figures; a chart's tick labels make one such row at most, a legend a second.
fn is_grid(ids: &[u32], lines: &[[f32; 4]]) -> bool {
    let rows = crate::geometry::text_rows(ids, |i| lines[i as usize]);
    let wide: Vec<&Vec<u32>> = rows.iter().filter(|row| row.len() >= 2).collect();
    let held: usize = wide.iter().map(|row| row.len()).sum();
    wide.len() >= GRID_ROWS && 2 * held >= ids.len()
}

/// Orders a region's lines (see [`crate::geometry::reading_order`]).
fn reading_order(ids: &mut Vec<u32>, lines: &[[f32; 4]]) {
    crate::geometry::reading_order(ids, |i| lines[i as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(label: &'static str, bbox: [f32; 4]) -> LayoutBox {
        LayoutBox {
            label: label.into(),
            score: 0.9,
            bbox,
        }
    }

    #[test]
    fn every_line_lands_in_one_region_and_orphans_form_blocks() {
        let regions = [
            found("title", [10.0, 10.0, 300.0, 40.0]),
            found("text", [10.0, 50.0, 300.0, 200.0]),
            // Empty text box: dropped. Empty figure: kept.
            found("text", [400.0, 10.0, 500.0, 40.0]),
            found("figure", [10.0, 400.0, 300.0, 600.0]),
        ];
        let lines = [
            [20.0, 15.0, 200.0, 35.0],    // title
            [20.0, 80.0, 280.0, 95.0],    // text, second row
            [20.0, 60.0, 280.0, 75.0],    // text, first row
            [20.0, 700.0, 200.0, 715.0],  // orphan block A
            [20.0, 718.0, 190.0, 733.0],  // orphan block A
            [600.0, 300.0, 700.0, 315.0], // orphan block B
        ];
        let out = assign(&regions, &lines);
        let labels: Vec<&str> = out.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["title", "text", "text", "figure", "text"]);
        assert_eq!(out[0].lines, [0]);
        assert_eq!(out[1].lines, [2, 1], "rows top to bottom");
        assert_eq!(out[2].lines, [5]);
        assert_eq!(out[2].score, 0.0);
        assert!(out[3].lines.is_empty());
        assert_eq!(out[4].lines, [3, 4]);
        let mut all: Vec<u32> = out.iter().flat_map(|r| r.lines.clone()).collect();
        all.sort();
        assert_eq!(all, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_line_goes_to_the_region_it_overlaps_most() {
        let regions = [
            found("text", [0.0, 0.0, 100.0, 100.0]),
            found("table", [40.0, 40.0, 200.0, 200.0]),
        ];
        let out = assign(&regions, &[[45.0, 45.0, 150.0, 60.0]]);
        let table = out.iter().find(|r| r.label == "table").unwrap();
        assert_eq!(table.lines, [0]);
        assert_eq!(
            out.len(),
            1,
            "the table stays, the empty text goes: {out:?}"
        );
    }

    #[test]
    fn a_figure_holding_a_grid_of_text_is_a_table() {
        let regions = [
            found("figure", [0.0, 0.0, 400.0, 200.0]),
            found("figure", [0.0, 300.0, 400.0, 500.0]),
        ];
        let mut lines = Vec::new();
        for row in 0..4 {
            for col in 0..3 {
                let (x, y) = (10.0 + 120.0 * col as f32, 10.0 + 40.0 * row as f32);
                lines.push([x, y, x + 60.0, y + 14.0]);
            }
        }
        // A chart: one row of tick labels, axis labels one per row.
        for (x, y) in [
            (50.0, 480.0),
            (150.0, 480.0),
            (250.0, 480.0),
            (5.0, 320.0),
            (5.0, 400.0),
        ] {
            lines.push([x, y, x + 30.0, y + 12.0]);
        }
        let out = assign(&regions, &lines);
        let labels: Vec<&str> = out.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["table", "figure"]);
    }

    #[test]
    fn text_boxed_inside_a_table_is_the_table() {
        let regions = [
            found("text", [102.0, 101.0, 198.0, 199.0]),
            found("table", [100.0, 100.0, 200.0, 200.0]),
        ];
        let lines = [[110.0, 110.0, 150.0, 120.0], [110.0, 130.0, 150.0, 140.0]];
        let out = assign(&regions, &lines);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].label, "table");
        assert_eq!(out[0].lines, [0, 1]);
    }

    #[test]
    fn lines_of_one_row_read_left_to_right() {
        let lines = [
            [200.0, 10.0, 300.0, 22.0],
            [10.0, 12.0, 100.0, 24.0],
            [10.0, 40.0, 100.0, 52.0],
        ];
        let mut ids = vec![2, 0, 1];
        reading_order(&mut ids, &lines);
        assert_eq!(ids, [1, 0, 2]);
    }

    #[test]
    fn reading_order_sorts_any_lines_without_panicking() {
        // Staggered lines where "overlaps, so by x" and "else by y" are not transitive.
        let lines: Vec<[f32; 4]> = (0..200)
            .map(|i| {
                let (x, y) = ((i * 37 % 101) as f32 * 9.0, (i * 7 % 23) as f32 * 6.5);
                [x, y, x + 40.0, y + 12.0]
            })
            .collect();
        let mut ids: Vec<u32> = (0..200).collect();
        reading_order(&mut ids, &lines);
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, (0..200).collect::<Vec<u32>>());
    }

    #[test]
    fn boxes_map_back_through_every_turn() {
        // A 100 x 50 input turned 90: the upright page is 50 x 100.
        let r = [5.0, 10.0, 15.0, 30.0];
        for (turn, (uw, uh)) in [
            (0, (100.0, 50.0)),
            (90, (50.0, 100.0)),
            (180, (100.0, 50.0)),
            (270, (50.0, 100.0)),
        ] {
            let input = rect_to_input(r, turn, 100.0, 50.0);
            let q = [
                [input[0], input[1]],
                [input[2], input[1]],
                [input[2], input[3]],
                [input[0], input[3]],
            ];
            let back = rect_of(&orientation::box_to_input(&q, (360 - turn) % 360, uw, uh));
            assert_eq!(back, r, "turn {turn}");
        }
    }

    #[test]
    fn text_cells_become_lines() {
        let lines = lines_from_cells(&[
            ("Total".into(), [1.0, 2.0, 30.0, 12.0]),
            ("  ".into(), [1.0, 2.0, 3.0, 4.0]),
        ]);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0].bbox,
            [[1.0, 2.0], [30.0, 2.0], [30.0, 12.0], [1.0, 12.0]]
        );
    }
}
