//! Model sets: which det, cls and rec files an engine loads (and the layout and table
//! models of page analysis), and the settings their publisher gives for them
//! (normalisation, DB thresholds, input sizes, dictionary).
//!
//! Defined once, in `python/vram_orchestrator/model_sets.json`: the Python package fetches
//! the files by it and this crate embeds it, so a set's files and settings cannot drift
//! apart. Nothing else in the engine names a model file or a dictionary size.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::OcrError;

const SETS_JSON: &str = include_str!("../../../python/vram_orchestrator/model_sets.json");

#[derive(Debug, Deserialize)]
struct Catalogue {
    default: String,
    sets: BTreeMap<String, ModelSet>,
}

/// One model set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelSet {
    /// Its key in the catalogue (`ppocr-v6-small`, ...).
    #[serde(skip)]
    pub name: String,
    pub files: Files,
    pub det: DetSettings,
    pub cls: ClsSettings,
    pub rec: RecSettings,
    /// The second rec model, for lines the first reads unsure, when the set has one.
    #[serde(default)]
    pub rec_fallback: Option<RecFallbackSettings>,
    /// The whole-page orientation model's input, when the set has one.
    #[serde(default)]
    pub orientation: Option<OrientationSettings>,
    /// The layout model's input and thresholds, when the set has one.
    #[serde(default)]
    pub layout: Option<LayoutSettings>,
    /// The table structure model's input, when the set has one.
    #[serde(default)]
    pub table: Option<TableSettings>,
}

/// File names (in the model folder) per role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Files {
    pub det: FileRef,
    pub cls: FileRef,
    pub rec: FileRef,
    /// A larger rec model that reads again the lines `rec` reads unsure, if any.
    #[serde(default)]
    pub rec_fallback: Option<FileRef>,
    /// The rec dictionary, when the rec model does not carry it in its metadata.
    #[serde(default)]
    pub dict: Option<FileRef>,
    /// The whole-page orientation classifier (0, 90, 180, 270), if any.
    #[serde(default)]
    pub orientation: Option<FileRef>,
    /// The page layout detector (PicoDet, CDLA classes), if any.
    #[serde(default)]
    pub layout: Option<FileRef>,
    /// The table structure recogniser (SLANet-plus), if any.
    #[serde(default)]
    pub table: Option<FileRef>,
}

/// A file of the set (where it comes from and its hash are the Python side's business).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileRef {
    pub name: String,
}

/// Text detection (DB): input normalisation and post-processing.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct DetSettings {
    /// Per channel, in the models' B, G, R order: `(px / 255 - mean) / std`.
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// Probability above which a pixel is text.
    pub thresh: f32,
    /// Mean probability a box needs to be kept.
    pub box_thresh: f32,
    /// How far a box is grown (DB shrinks text regions in training).
    pub unclip_ratio: f32,
    /// Most contours examined per image.
    pub max_candidates: usize,
}

/// The 0°/180° line classifier.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ClsSettings {
    pub height: usize,
    pub width: usize,
    /// "180" must beat this score for a line to count as upside down.
    pub thresh: f32,
}

/// Text recognition (CTC).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecSettings {
    /// Input height; crops keep their aspect ratio.
    pub height: usize,
    /// The publisher's input width: shorter crops are padded to it (reference profile).
    pub width: usize,
    pub dictionary: Dictionary,
}

/// The fallback rec model: its own input and dictionary, and when it reads a line again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecFallbackSettings {
    #[serde(flatten)]
    pub rec: RecSettings,
    /// A line whose rec score (mean character probability) is below this is read again by
    /// the fallback model, whose reading replaces the first. Measured, not published: see
    /// docs/profiles.md, section 10.
    pub below_score: f32,
}

/// The page orientation model's input: the image scaled to `resize_short` on its short
/// side, the centre `crop` x `crop`, normalised per channel (B, G, R).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrientationSettings {
    pub resize_short: usize,
    pub crop: usize,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    /// Where its labels ("0", "90", "180", "270") are.
    pub labels: Dictionary,
}

/// The layout model: the page stretched to `width` x `height`, normalised per channel
/// (B, G, R); boxes kept above `score_thresh`, per class NMS at `nms_iou`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct LayoutSettings {
    pub height: usize,
    pub width: usize,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub score_thresh: f32,
    pub nms_iou: f32,
}

/// The table model: the crop scaled to `max_side` on its long side, normalised per channel
/// (B, G, R), zero-padded to `max_side` x `max_side`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct TableSettings {
    pub max_side: usize,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// Where the rec dictionary comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dictionary {
    /// A key of the rec model's metadata (one entry per line).
    Metadata(String),
    /// A file of the set, by role (`dict`): one entry per line.
    File(String),
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut c: Catalogue =
            serde_json::from_str(SETS_JSON).expect("model_sets.json is checked by the tests");
        for (name, set) in c.sets.iter_mut() {
            set.name = name.clone();
        }
        c
    })
}

impl ModelSet {
    /// The set called `name`.
    pub fn named(name: &str) -> Result<ModelSet, OcrError> {
        catalogue().sets.get(name).cloned().ok_or_else(|| {
            OcrError::Setup(format!(
                "unknown model set {name:?}; known: {}",
                ModelSet::names().join(", ")
            ))
        })
    }

    /// The set used when none is named.
    pub fn default_name() -> &'static str {
        &catalogue().default
    }

    pub fn names() -> Vec<String> {
        catalogue().sets.keys().cloned().collect()
    }

    /// The set's file names: det, cls, rec, then the fallback rec, the dictionary, the
    /// orientation, layout and table models if the set has them (the order of
    /// `model_sets.json`).
    pub fn file_names(&self) -> Vec<String> {
        let f = &self.files;
        [
            Some(&f.det),
            Some(&f.cls),
            Some(&f.rec),
            f.rec_fallback.as_ref(),
            f.dict.as_ref(),
            f.orientation.as_ref(),
            f.layout.as_ref(),
            f.table.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_parses_and_is_complete() {
        let names = ModelSet::names();
        assert!(names.contains(&ModelSet::default_name().to_string()));
        for name in names {
            let set = ModelSet::named(&name).unwrap();
            assert_eq!(set.name, name);
            assert!(set.det.std.iter().all(|s| *s > 0.0), "{name}");
            assert!(set.det.thresh > 0.0 && set.det.box_thresh > 0.0, "{name}");
            assert!(set.rec.height > 0 && set.cls.height > 0, "{name}");
            if let Dictionary::File(role) = &set.rec.dictionary {
                assert_eq!(role, "dict", "{name}: the dictionary file's role");
                assert!(set.files.dict.is_some(), "{name} names no dict file");
            }
            assert_eq!(
                set.orientation.is_some(),
                set.files.orientation.is_some(),
                "{name}: orientation settings and file go together"
            );
            assert_eq!(
                set.rec_fallback.is_some(),
                set.files.rec_fallback.is_some(),
                "{name}: fallback rec settings and file go together"
            );
            if let Some(fallback) = &set.rec_fallback {
                assert!(fallback.rec.height > 0, "{name}");
                assert!((0.0..=1.0).contains(&fallback.below_score), "{name}");
                assert!(
                    matches!(fallback.rec.dictionary, Dictionary::Metadata(_)),
                    "{name}: a fallback's dictionary is in its metadata"
                );
            }
            assert_eq!(set.layout.is_some(), set.files.layout.is_some(), "{name}");
            assert_eq!(set.table.is_some(), set.files.table.is_some(), "{name}");
        }
        assert!(ModelSet::named("ppocr-v9").is_err());
    }

    #[test]
    fn the_reference_set_keeps_rapidocr_1_4_4_settings() {
        let v4 = ModelSet::named("ppocr-v4").unwrap();
        assert_eq!(v4.det.mean, [0.5; 3]);
        assert_eq!((v4.det.thresh, v4.det.box_thresh), (0.3, 0.5));
        assert_eq!((v4.det.unclip_ratio, v4.det.max_candidates), (1.6, 1000));
        assert_eq!((v4.rec.height, v4.rec.width), (48, 320));
        assert_eq!(v4.files.det.name, "ch_PP-OCRv4_det_infer.onnx");
    }

    #[test]
    fn document_models_keep_the_packages_settings() {
        for name in ModelSet::names() {
            let set = ModelSet::named(&name).unwrap();
            let layout = set.layout.expect("layout settings");
            assert_eq!((layout.height, layout.width), (800, 608), "{name}");
            assert_eq!((layout.score_thresh, layout.nms_iou), (0.5, 0.5), "{name}");
            assert_eq!(set.table.expect("table settings").max_side, 488, "{name}");
            assert_eq!(set.files.layout.unwrap().name, "layout_cdla.onnx");
            assert_eq!(set.files.table.unwrap().name, "slanet-plus.onnx");
        }
    }
}
