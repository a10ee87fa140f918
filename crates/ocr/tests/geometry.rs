//! Checks `vram_orch_ocr::geometry` against fixtures recorded from OpenCV 5.0, pyclipper
//! and RapidOCR 1.4.4 by `tests/fixtures/make_geometry_fixtures.py`.

use image::RgbImage;
use serde_json::Value;
use vram_orch_ocr::geometry::*;

fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/geometry/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match serde_json::from_str(&text).expect("fixture json") {
        Value::Array(v) => v,
        _ => panic!("{path}: expected an array"),
    }
}

fn usize_of(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string").as_bytes();
    s.chunks_exact(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

fn mask(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_str()
                .unwrap()
                .bytes()
                .map(|b| (b == b'1') as u8)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn points_i32(v: &Value) -> Vec<[i32; 2]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_i64().unwrap() as i32, p[1].as_i64().unwrap() as i32])
        .collect()
}

fn points_i64(v: &Value) -> Vec<[i64; 2]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_i64().unwrap(), p[1].as_i64().unwrap()])
        .collect()
}

fn points_f32(v: &Value) -> Vec<[f32; 2]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32])
        .collect()
}

fn quad(v: &Value) -> Quad {
    let p = points_f32(v);
    [p[0], p[1], p[2], p[3]]
}

fn close_quad(a: &Quad, b: &Quad, tol: f32) -> bool {
    a.iter()
        .zip(b)
        .all(|(p, q)| (p[0] - q[0]).abs() <= tol && (p[1] - q[1]).abs() <= tol)
}

#[test]
fn resize_matches_cv2() {
    let mut worst = 0i32;
    for (i, c) in load("resize.json").iter().enumerate() {
        let (w, h, dw, dh) = (
            usize_of(&c["w"]),
            usize_of(&c["h"]),
            usize_of(&c["dw"]),
            usize_of(&c["dh"]),
        );
        let src = RgbImage::from_raw(w as u32, h as u32, hex(&c["src"])).unwrap();
        let got = resize_bilinear(&src, dw as u32, dh as u32);
        let want = hex(&c["dst"]);
        let d = got
            .as_raw()
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap_or(0);
        assert_eq!(got.as_raw().len(), want.len(), "case {i}");
        if d > 0 {
            eprintln!("resize case {i} ({w}x{h} -> {dw}x{dh}): max diff {d}");
        }
        worst = worst.max(d);
    }
    assert_eq!(worst, 0, "resize is not bit-exact");
}

#[test]
fn dilate_and_contours_match_cv2() {
    for (i, c) in load("contours.json").iter().enumerate() {
        let (w, h) = (usize_of(&c["w"]), usize_of(&c["h"]));
        let m = mask(&c["mask"]);
        let got: Vec<Vec<[i32; 2]>> = find_contours(&m, w, h);
        let want: Vec<Vec<[i32; 2]>> = c["contours"]
            .as_array()
            .unwrap()
            .iter()
            .map(points_i32)
            .collect();
        assert_eq!(got, want, "contours case {i} ({})", c["kind"]);
        let m255: Vec<u8> = m.iter().map(|&v| v * 255).collect();
        assert_eq!(
            find_contours(&m255, w, h),
            want,
            "contours (0/255) case {i}"
        );
        let d = dilate_2x2(&m, w, h);
        assert_eq!(d, mask(&c["dilated"]), "dilate case {i}");
        let want: Vec<Vec<[i32; 2]>> = c["dilated_contours"]
            .as_array()
            .unwrap()
            .iter()
            .map(points_i32)
            .collect();
        assert_eq!(find_contours(&d, w, h), want, "dilated contours case {i}");
    }
}

fn check_rect(tag: &str, pts: &[[f32; 2]], item: &Value) {
    let r = min_area_rect(pts);
    let want = &item["rect"];
    let (c, s, a) = (
        points_f32(&Value::Array(vec![want[0].clone()]))[0],
        &want[1],
        want[2].as_f64().unwrap() as f32,
    );
    let s = [s[0].as_f64().unwrap() as f32, s[1].as_f64().unwrap() as f32];
    let ok = (r.center[0] - c[0]).abs() <= 1e-3
        && (r.center[1] - c[1]).abs() <= 1e-3
        && (r.size[0] - s[0]).abs() <= 1e-3
        && (r.size[1] - s[1]).abs() <= 1e-3
        && (r.angle - a).abs() <= 1e-3;
    assert!(ok, "{tag}: rect {r:?} vs ({c:?}, {s:?}, {a})");
    let bp = box_points(&r);
    assert!(
        close_quad(&bp, &quad(&item["box_points"]), 1e-3),
        "{tag}: box points {bp:?} vs {}",
        item["box_points"]
    );
}

#[test]
fn quads_match_reference() {
    let (mut unclip_total, mut unclip_off, mut near_ties) = (0usize, 0usize, 0usize);
    for (i, c) in load("quads.json").iter().enumerate() {
        let q = quad(&c["quad"]);
        assert_eq!(
            order_points_clockwise(&q),
            quad(&c["order"]),
            "order case {i}"
        );
        let pts = points_f32(&c["points"]);
        let r = min_area_rect(&pts);
        let ws = &c["rect"][1];
        let want_area = ws[0].as_f64().unwrap() * ws[1].as_f64().unwrap();
        if (r.size[0] as f64 * r.size[1] as f64 - want_area).abs() > 1e-3 * want_area.max(1.0) {
            panic!(
                "quad case {i}: rect {r:?} has a different area than {}",
                c["rect"]
            );
        }
        if !close_quad(&box_points(&r), &quad(&c["box_points"]), 1e-3) {
            // Two rectangles of (nearly) equal area: f32 rounding picks either one.
            eprintln!("quad case {i}: near-tie rect {r:?} vs {}", c["rect"]);
            near_ties += 1;
            continue;
        }
        check_rect(&format!("quad case {i}"), &pts, c);
        let (mb, s) = mini_box(&pts);
        assert!(
            close_quad(&mb, &quad(&c["mini_box"]), 1e-3),
            "mini box case {i}: {mb:?} vs {}",
            c["mini_box"]
        );
        assert!(
            (s - c["sside"].as_f64().unwrap() as f32).abs() <= 1e-3,
            "sside case {i}"
        );
        for ratio in ["1.5", "2.0"] {
            let key = format!("unclip_{ratio}");
            if let Some(want) = c.get(&key) {
                let got = unclip(&q, ratio.parse().unwrap());
                unclip_total += 1;
                if got != points_i64(want) {
                    eprintln!("unclip {ratio} quad case {i}: {got:?} vs {want}");
                    unclip_off += 1;
                }
            }
        }
    }
    // Random quads include concave ones whose offset self-intersects; Clipper's union
    // then cuts the loop, which `unclip` does not do (DB boxes are rectangles).
    eprintln!(
        "unclip (random quads): {unclip_off} of {unclip_total} differ; {near_ties} near-tie rects"
    );
    assert!(
        unclip_off * 3 <= unclip_total,
        "unclip: {unclip_off} of {unclip_total} differ"
    );
    assert!(near_ties <= 3, "too many min-area rect disagreements");
}

#[test]
fn db_postprocess_matches_reference() {
    let (mut unclip_total, mut unclip_off) = (0usize, 0usize);
    for (i, c) in load("db.json").iter().enumerate() {
        let (w, h) = (usize_of(&c["w"]), usize_of(&c["h"]));
        let prob: Vec<f32> = c["prob"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v.as_f64().unwrap() / 1024.0) as f32)
            .collect();
        let m: Vec<u8> = prob.iter().map(|&p| (p > 0.3) as u8).collect();
        let contours = find_contours(&m, w, h);
        let items = c["items"].as_array().unwrap();
        assert_eq!(contours.len(), items.len(), "db case {i}: contour count");
        for (j, (cont, it)) in contours.iter().zip(items).enumerate() {
            let tag = format!("db case {i} contour {j}");
            assert_eq!(cont, &points_i32(&it["contour"]), "{tag}");
            let pts: Vec<[f32; 2]> = cont.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
            check_rect(&tag, &pts, it);
            let (mb, s) = mini_box(&pts);
            assert!(
                close_quad(&mb, &quad(&it["mini_box"]), 1e-3),
                "{tag}: mini box {mb:?} vs {}",
                it["mini_box"]
            );
            assert!(
                (s - it["sside"].as_f64().unwrap() as f32).abs() <= 1e-3,
                "{tag}: sside"
            );
            let score = box_score_fast(&prob, w, h, &mb);
            let want = it["score"].as_f64().unwrap();
            assert!(
                (score as f64 - want).abs() <= 1e-5,
                "{tag}: score {score} vs {want}"
            );
            if let Some(u) = it.get("unclip") {
                let got = unclip(&mb, 1.6);
                unclip_total += 1;
                if got != points_i64(u) {
                    eprintln!("{tag}: unclip {got:?} vs {u}");
                    unclip_off += 1;
                }
                if let Some(ub) = it.get("unclip_box") {
                    let up: Vec<[f32; 2]> =
                        got.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
                    let (b2, s2) = mini_box(&up);
                    let s_want = it["unclip_sside"].as_f64().unwrap() as f32;
                    if !close_quad(&b2, &quad(ub), 1e-3) || (s2 - s_want).abs() > 1e-3 {
                        eprintln!("{tag}: unclip box {b2:?} vs {ub}");
                    }
                }
            }
        }
    }
    eprintln!("unclip (DB boxes): {unclip_off} of {unclip_total} differ");
    assert!(
        unclip_off * 10 <= unclip_total,
        "unclip: {unclip_off} of {unclip_total} differ"
    );
}

#[test]
fn crops_match_reference() {
    let (mut total, mut off1, mut worst) = (0usize, 0usize, 0i32);
    for (i, c) in load("crops.json").iter().enumerate() {
        let (w, h) = (usize_of(&c["w"]), usize_of(&c["h"]));
        let img = RgbImage::from_raw(w as u32, h as u32, hex(&c["img"])).unwrap();
        let got = crop_perspective(&img, &quad(&c["quad"]));
        assert_eq!(
            got.dimensions(),
            (usize_of(&c["cw"]) as u32, usize_of(&c["ch"]) as u32),
            "crop case {i} size"
        );
        let want = hex(&c["crop"]);
        let mut case_off = 0;
        for (&a, &b) in got.as_raw().iter().zip(&want) {
            let d = (a as i32 - b as i32).abs();
            worst = worst.max(d);
            if d > 1 {
                case_off += 1;
            }
            total += 1;
        }
        if case_off > 0 {
            eprintln!("crop case {i}: {case_off} values off by more than 1");
        }
        off1 += case_off;
    }
    eprintln!("crops: {off1} of {total} values off by >1, worst {worst}");
    assert!(
        off1 * 100 <= total,
        "crops: {off1} of {total} values off by more than 1 grey level"
    );
}
